"""The one-time enrollment token: one mechanism, its kind says what it enrolls.

An operator or technician issues a token (shown once, only its hash stored); the new
device or hospital redeems it once, before it expires. A used, expired or unknown token
is refused alike (401), and two concurrent redemptions cannot both succeed (the use is a
conditional update).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select

from hub_server.core.errors import NotAuthenticated
from hub_server.core.security import new_token, sha256_hex
from hub_server.models import EnrollmentToken, HospitalEnrollmentToken

__all__ = ["DEVICE", "HOSPITAL", "TokenKind", "issue_token", "open_token", "spend_token"]

T = TypeVar("T", EnrollmentToken, HospitalEnrollmentToken)


@dataclass(frozen=True)
class TokenKind(Generic[T]):
    """What a kind of token enrolls: its table, the column that records what it enrolled,
    and who hands out a new one (named in the refusal)."""

    model: type[T]
    used_by: str
    issuer_ja: str

    def refused(self) -> NotAuthenticated:
        return NotAuthenticated(
            "invalid_enrollment_token",
            "the enrollment token is unknown, already used or expired",
            "登録トークンが無効です(使用済みまたは期限切れ)。"
            f"{self.issuer_ja}に新しいトークンを依頼してください。",
        )


DEVICE = TokenKind(EnrollmentToken, "device_id", "技術担当者")
HOSPITAL = TokenKind(HospitalEnrollmentToken, "hospital_id", "運用者")


def issue_token(
    session: Session,
    kind: TokenKind[T],
    *,
    created_by: str,
    ttl: timedelta,
    now: datetime,
    **fields: str | None,
) -> tuple[str, T]:
    """The one-time token (shown once) and its stored row (hash only); ``fields`` are
    what the issuer fixes (a device's fire department, a hospital's name)."""
    token = new_token()
    values: dict[str, Any] = {
        "token_hash": sha256_hex(token),
        "created_by": created_by,
        "created_at": now,
        "expires_at": now + ttl,
        **fields,
    }
    row = kind.model(**values)
    session.add(row)
    return token, row


def open_token(session: Session, kind: TokenKind[T], *, token: str, now: datetime) -> T:
    """The row of an unused, unexpired ``token``; 401 otherwise."""
    model = kind.model
    row = session.exec(select(model).where(col(model.token_hash) == sha256_hex(token))).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise kind.refused()
    return row


def spend_token(
    session: Session, kind: TokenKind[T], row: T, *, used_by: str, now: datetime
) -> None:
    """Mark ``row`` used by ``used_by`` (conditional: 401 if another redemption won)."""
    model = kind.model
    result = session.execute(
        update(model)
        .where(col(model.id) == row.id, col(model.used_at).is_(None))
        .values({kind.used_by: used_by, "used_at": now})
    )
    if getattr(result, "rowcount", 0) != 1:
        raise kind.refused()
