"""PostgreSQL only: pending audit rows moved into the chain in one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

__all__ = ["move_pending"]

_MOVE_PENDING_PG = """
WITH h AS (
  SELECT * FROM unnest(%(ids)b::bigint[], %(seqs)b::bigint[], %(prevs)b::text[],
                       %(hashes)b::text[]) AS t(id, seq, prev, hash)
), ins AS (
  INSERT INTO audit (seq, at, actor, action, subject, patient_ref, details, prev_hash, hash)
  SELECT h.seq, p.at, p.actor, p.action, p.subject, p.patient_ref, p.details, h.prev, h.hash
  FROM h JOIN audit_pending p ON p.id = h.id
), del AS (
  DELETE FROM audit_pending WHERE id IN (SELECT id FROM h)
)
UPDATE audit_head SET seq = %(s)s, hash = %(h)s WHERE id = 1
"""


def move_pending(
    conn: Connection, ids: list[int], entries: list[dict[str, Any]], *, seq: int, head: str
) -> None:
    """Move the pending rows ``ids`` into ``audit`` as ``entries`` (same order) and the
    head to ``seq``/``head``: the rows' content is copied inside the database, only the
    chain's numbers and hashes travel (binary arrays)."""
    conn.exec_driver_sql(
        _MOVE_PENDING_PG,
        {
            "ids": ids,
            "seqs": [e["seq"] for e in entries],
            "prevs": [e["prev_hash"] for e in entries],
            "hashes": [e["hash"] for e in entries],
            "s": seq,
            "h": head,
        },
    )
