"""Recomputing the chain: the first row that does not match is reported."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from hub_server.core.audit.chain import GENESIS, row_hash
from hub_server.models import AuditEntry, AuditHead

__all__ = ["AuditVerdict", "verify_chain"]


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    rows: int
    bad_seq: int | None = None
    reason: str = ""
    #: What an intact chain has been through (genuine restores: "restored to row N at T").
    notes: tuple[str, ...] = ()


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
            digest = row_hash(prev, row.seq, row)
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
