"""Single-use values: request nonces (replay) and challenges (a card or key proves
possession by signing one)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete

from hub_server.core.errors import NotAuthenticated
from hub_server.core.security import new_id
from hub_server.models import Challenge, Nonce
from sync.signed import b64e

__all__ = [
    "consume_challenge",
    "create_challenge",
    "purge_expired",
    "purge_expired_challenges",
    "record_nonce",
]

_NONCES: Table = Nonce.__table__  # type: ignore[attr-defined]


def record_nonce(conn: Connection, *, key_id: str, nonce: str, expires_at: datetime) -> bool:
    """Store a nonce on an autocommit connection; False if seen before (replay)."""
    try:
        conn.execute(_NONCES.insert(), {"key_id": key_id, "nonce": nonce, "expires_at": expires_at})
    except IntegrityError:
        return False
    return True


def create_challenge(
    session: Session, *, purpose: str, device_id: str | None, ttl: timedelta, now: datetime
) -> Challenge:
    ch = Challenge(
        id=new_id(),
        nonce=b64e(secrets.token_bytes(32)),
        purpose=purpose,
        device_id=device_id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(ch)
    return ch


def consume_challenge(
    session: Session, *, challenge_id: str, purpose: str, device_id: str | None, now: datetime
) -> Challenge:
    """Use a challenge once (its purpose and device must match); 401 otherwise."""
    ch = session.get(Challenge, challenge_id)
    bad = NotAuthenticated(
        "invalid_challenge",
        "the challenge is unknown, used, expired or not yours",
        "チャレンジが無効です。もう一度やり直してください。",
    )
    if ch is None or ch.purpose != purpose or ch.device_id != device_id:
        raise bad
    if ch.used_at is not None or ch.expires_at <= now:
        raise bad
    result = session.execute(
        update(Challenge)
        .where(col(Challenge.id) == ch.id, col(Challenge.used_at).is_(None))
        .values(used_at=now)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise bad
    return ch


def purge_expired(session: Session, *, now: datetime) -> None:
    """Drop expired nonces and challenges (the replay window is over for them)."""
    session.execute(delete(Nonce).where(col(Nonce.expires_at) < now))
    purge_expired_challenges(session, now=now)


def purge_expired_challenges(session: Session, *, now: datetime) -> int:
    """Drop challenges past their expiry (used or not: nothing refers to them after)."""
    result = session.execute(delete(Challenge).where(col(Challenge.expires_at) <= now))
    return int(getattr(result, "rowcount", 0) or 0)
