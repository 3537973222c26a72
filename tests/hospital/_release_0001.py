"""The hospital's tables as the last release before migrations made them (commit 856a96c).

Frozen here, copied from that release's ``hospital/store.py``: its ``create_all`` made
the databases hospitals run today (``cases.sealed_at`` a 32-bit INTEGER on PostgreSQL).
The migration tests build such a database and upgrade it; the time-column guard must
refuse this schema. Never edit it to follow the models.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, MetaData
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel

__all__ = ["metadata"]


class _Base(SQLModel, registry=registry()):
    pass


class CaseRow(_Base, table=True):
    __tablename__ = "cases"

    case_id: str = Field(primary_key=True, max_length=128)
    event_id: int
    device_id: str = Field(max_length=128)
    sealed_at: int  # the envelope's created_at (unix seconds)
    received_at: datetime = Field(index=True)
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # nonce || AES-GCM
    answer: str | None = Field(default=None, max_length=16)  # accept | decline
    answer_reason: str | None = Field(default=None, max_length=40)
    answered_by: str | None = Field(default=None, max_length=80)
    answered_at: datetime | None = None
    # chosen | chosen_phone (the crew confirmed by phone) | elsewhere
    destination: str | None = Field(default=None, max_length=16)
    exported_at: datetime | None = None


class ClosureRow(_Base, table=True):
    """中止 / 不搬送 of a case: when, and the reason encrypted like the case (patient data)."""

    __tablename__ = "closures"

    case_id: str = Field(primary_key=True, max_length=128)
    event_id: int
    closed_at: datetime
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # nonce || AES-GCM


class Rejection(_Base, table=True):
    """A case event that was refused: the error code only, never content."""

    __tablename__ = "rejections"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    event_id: int
    case_id: str | None = Field(default=None, max_length=128)
    code: str = Field(max_length=60)


class StaffUser(_Base, table=True):
    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=200)
    totp_secret: str = Field(max_length=64)
    last_totp_step: int = 0  # a TOTP code is accepted once (replays are refused)
    failures: int = 0
    locked_until: datetime | None = None
    disabled: bool = False
    created_at: datetime


class StaffSession(_Base, table=True):
    __tablename__ = "sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


class AuditRow(_Base, table=True):
    """Who did what, when (sign-in, failures, every case view, answers, exports, purges)."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    case_id: str | None = Field(default=None, max_length=128, index=True)
    detail: str = Field(default="", max_length=400)
    client: str | None = Field(default=None, max_length=64)


metadata: MetaData = _Base.metadata
