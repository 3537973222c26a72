"""The append-only, hash-chained audit trail.

Each row stores ``hash = sha256(prev_hash || canonical_json(row))``; the single
``audit_head`` row holds the last sequence number and hash. Writers first UPDATE
the head (a row lock on PostgreSQL, the write lock on SQLite), so the chain never
forks even with several hub processes. ``verify_chain`` recomputes everything and
reports the first row that does not match (edited, deleted, reordered or truncated).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlmodel import Session, col, select

from hub_server.core.security import canonical_json
from hub_server.models import AuditEntry, AuditHead

__all__ = ["AuditVerdict", "append_audit", "append_audit_conn", "entry_hash", "verify_chain"]

GENESIS = "0" * 64
_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
_BUMP_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_SET_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(hash=bindparam("h"))


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


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
    patient_ref: str | None = None,
) -> AuditEntry:
    """Append one row in the caller's transaction (the caller commits)."""
    return append_audit_conn(
        session.connection(),
        actor=actor,
        action=action,
        subject=subject,
        details=details,
        now=now,
        patient_ref=patient_ref,
    )


def append_audit_conn(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
    patient_ref: str | None = None,
) -> AuditEntry:
    """``append_audit`` on a Core connection inside the caller's transaction."""
    # One statement takes the lock and reads the previous link of the chain.
    row = conn.execute(_BUMP_HEAD).one()
    seq, prev_hash = int(row[0]), str(row[1])
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    at = now  # microsecond precision on both databases, so the hash survives a round trip
    digest = entry_hash(
        prev_hash,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        patient_ref=patient_ref,
        details=text,
    )
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        patient_ref=patient_ref,
        details=text,
        prev_hash=prev_hash,
        hash=digest,
    )
    conn.execute(_AUDIT.insert(), entry.model_dump())
    conn.execute(_SET_HEAD, {"h": digest})
    return entry


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    rows: int
    bad_seq: int | None = None
    reason: str = ""


def verify_chain(session: Session, *, batch: int = 1000) -> AuditVerdict:
    """Recompute the whole chain; the first mismatch is reported."""
    prev = GENESIS
    expected = 1
    count = 0
    while True:
        rows = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.seq) >= expected)
            .order_by(col(AuditEntry.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected:
                return AuditVerdict(False, count, expected, "missing row (gap in the sequence)")
            if row.prev_hash != prev:
                return AuditVerdict(False, count, row.seq, "prev_hash does not match")
            digest = entry_hash(
                prev,
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                patient_ref=row.patient_ref,
                details=row.details,
            )
            if digest != row.hash:
                return AuditVerdict(False, count, row.seq, "row content does not match its hash")
            prev = row.hash
            expected += 1
            count += 1
        session.expunge_all()
    head = session.exec(select(AuditHead).where(AuditHead.id == 1)).first()
    if head is None or head.seq != count or head.hash != prev:
        return AuditVerdict(False, count, count + 1, "rows missing at the end (head mismatch)")
    return AuditVerdict(True, count)
