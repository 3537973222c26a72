"""The chain itself: a row's hash, appending a row, linking pending rows into the chain."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from hub_server.core.audit._postgres import move_pending
from hub_server.models import AuditEntry, AuditHead, AuditPending
from sync.signed import canonical_json

__all__ = ["GENESIS", "append_audit", "chain_pending", "entry_hash", "row_hash"]

GENESIS = "0" * 64
_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
_PENDING: Table = AuditPending.__table__  # type: ignore[attr-defined]
_LOCK_HEAD = sa_select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_TAKE_PENDING = (
    sa_select(
        _PENDING.c.id,
        _PENDING.c.at,
        _PENDING.c.actor,
        _PENDING.c.action,
        _PENDING.c.subject,
        _PENDING.c.patient_ref,
        _PENDING.c.details,
    )
    .order_by(_PENDING.c.id)
    .limit(bindparam("n"))
)
_DROP_PENDING = _PENDING.delete().where(_PENDING.c.id.in_(bindparam("ids", expanding=True)))
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("s"), hash=bindparam("h"))
_BATCH = 1000


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    patient_ref: str | None,
    details: str,
) -> str:
    row = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "patient_ref": patient_ref,
        "details": details,
    }
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(row)).hexdigest()


def row_hash(prev_hash: str, seq: int, row: Any) -> str:
    """``entry_hash`` of a row read from ``audit_pending`` or ``audit`` (its ``at``,
    ``actor``, ``action``, ``subject``, ``patient_ref`` and ``details``) at ``seq``."""
    return entry_hash(
        prev_hash,
        seq=seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        patient_ref=row.patient_ref,
        details=row.details,
    )


def append_audit(
    session: Session | Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
    patient_ref: str | None = None,
) -> None:
    """Append one row in the caller's transaction (the caller commits).

    The row is written to ``audit_pending`` (which also takes SQLite's write lock before
    the head is read), then every pending row the transaction sees is chained, oldest
    first, this one included: committed rows of cases first, so the chain keeps cause
    before effect.
    """
    conn = session.connection() if isinstance(session, Session) else session
    conn.execute(
        _PENDING.insert(),
        {
            "at": now,  # microsecond precision on both databases: the hash survives
            "actor": actor,
            "action": action,
            "subject": subject,
            "patient_ref": patient_ref,
            "details": canonical_json(details).decode(),
        },
    )
    while chain_pending(conn, batch=_BATCH) == _BATCH:
        pass  # more than a batch was waiting: this row may be further on


def chain_pending(conn: Connection, *, batch: int = _BATCH) -> int:
    """Link pending rows into the chain (oldest first) in the caller's transaction.

    Takes the head lock once for up to ``batch`` rows; returns how many were chained.
    Losing this transaction (e.g. an asynchronous commit lost in a database crash) loses
    nothing: the pending rows and the old head come back together and are chained again.
    """
    head = conn.execute(_LOCK_HEAD).one()
    rows = conn.execute(_TAKE_PENDING, {"n": batch}).all()
    if not rows:
        return 0
    seq, prev = int(head[0]), str(head[1])
    entries = []
    for r in rows:
        seq += 1
        digest = row_hash(prev, seq, r)
        entries.append(
            {
                "seq": seq,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "subject": r.subject,
                "patient_ref": r.patient_ref,
                "details": r.details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    if conn.dialect.name == "postgresql":
        move_pending(conn, [r.id for r in rows], entries, seq=seq, head=prev)
        return len(rows)
    conn.execute(_AUDIT.insert(), entries)
    conn.execute(_DROP_PENDING, {"ids": [r.id for r in rows]})
    conn.execute(_MOVE_HEAD, {"s": seq, "h": prev})
    return len(rows)
