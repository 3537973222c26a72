"""Idempotency records: a retried write with the same key gets the first answer again."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete

from hub_server.core.errors import Conflict
from hub_server.models import IdempotencyRecord

__all__ = [
    "begin_idempotent",
    "claim_idempotent",
    "finish_idempotent",
    "idempotency_record",
    "purge_idempotency",
]

_IDEMPOTENCY: Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]


def idempotency_record(session: Session, *, owner: str, key: str) -> IdempotencyRecord | None:
    """The stored record of ``owner``'s ``key``, if any."""
    return session.get(IdempotencyRecord, (owner, key))


def begin_idempotent(
    session: Session,
    *,
    owner: str,
    key: str,
    request_hash: str,
    now: datetime,
    conn: Connection | None = None,
) -> IdempotencyRecord | None:
    """Claim ``key``: None if this request now owns it, else the existing record.

    The claim must be visible to other requests at once: it is written on ``conn`` (an
    autocommit connection) or committed on ``session``.
    """
    row = {
        "owner": owner,
        "key": key,
        "request_hash": request_hash,
        "status": "in_progress",
        "created_at": now,
    }
    try:
        if conn is not None:
            conn.execute(_IDEMPOTENCY.insert(), row)
        else:
            session.connection().execute(_IDEMPOTENCY.insert(), row)
            session.commit()
        return None
    except IntegrityError:
        session.rollback()
    existing = session.get(IdempotencyRecord, (owner, key))
    if existing is None:  # deleted in between (a failed attempt): let the caller retry
        raise Conflict("idempotency_conflict", "the request is being retried; try again")
    return existing


def claim_idempotent(
    conn: Connection,
    *,
    owner: str,
    key: str,
    request_hash: str,
    now: datetime,
    status: int,
    body: str,
) -> bool:
    """Store the final response of ``key`` inside the caller's transaction; False if the
    key exists (the transaction is then unusable on PostgreSQL: roll it back).

    The primary key is the claim: a concurrent request with the same key waits on it
    (PostgreSQL) or on the write lock (SQLite) and then sees the committed response;
    if this transaction rolls back, nothing of the claim is left.
    """
    try:
        conn.execute(
            _IDEMPOTENCY.insert(),
            {
                "owner": owner,
                "key": key,
                "request_hash": request_hash,
                "status": "done",
                "response_status": status,
                "response_body": body,
                "created_at": now,
            },
        )
    except IntegrityError:
        return False
    return True


def finish_idempotent(
    session: Session,
    *,
    owner: str,
    key: str,
    status: int | None,
    body: str | None,
    commit: bool = True,
) -> None:
    """Store the final response, or forget the key (``status=None``) after a failure.

    With ``commit=False`` it joins the caller's transaction (the case and its stored
    response then commit together).
    """
    t = _IDEMPOTENCY
    where = (t.c.owner == owner) & (t.c.key == key)
    if status is None:
        session.connection().execute(t.delete().where(where))
    else:
        session.connection().execute(
            t.update()
            .where(where)
            .values(status="done", response_status=status, response_body=body)
        )
    if commit:
        session.commit()


def purge_idempotency(session: Session, *, now: datetime, retention: timedelta) -> None:
    """Forget the keys older than ``retention``."""
    session.execute(
        delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < now - retention)
    )
