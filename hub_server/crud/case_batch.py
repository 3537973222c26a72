"""New cases in one PostgreSQL statement: the one way a case is stored on PostgreSQL.

Data-modifying CTEs record, for each case of the batch (given as parallel arrays), the
request's nonce, the Idempotency-Key with its final response, the case, its pending
audit row (``audit_pending``: chained right after the commit, ``core.audit``), the
recipients' numbered events and recipient rows, and send one ``NOTIFY`` per case
(delivered at commit). The recipients' rows are locked once, in id order (concurrent
batches never deadlock), and each hospital's counter moves by the number of its events
in the batch; the batch's cases are numbered in batch order. The same statement reads
whether a device of the batch is revoked.

A batch of one is how a case is stored alone (the case writer does so for each case of a
batch that failed): a unique violation then names its table (``UniqueTaken``: ``nonces``
for a replay, ``idempotency_records`` for a taken key, ``cases``/``case_recipients`` for
a taken case id) and ``BatchRefused`` says whether the device is revoked or which
recipients are not registered hospitals.

The arrays go in PostgreSQL's binary format (``%(name)b``): in the text format psycopg
quotes and escapes every element in Python, about 0.3 ms per 4 KB case (its envelope and
its notification text), more than the rest of the statement's preparation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from hub_server.core.events import CHANNEL, PendingEvent, notification_prefix_suffix

__all__ = [
    "CASE_BATCH_SQL",
    "BatchRefused",
    "CaseRow",
    "UniqueTaken",
    "insert_cases_in_one_statement",
]

assert CHANNEL == "kyukyu_events"

# Public: benchmarks/hub_load.py runs this same statement without the web layer (the
# database's own limit).
CASE_BATCH_SQL = """
WITH b AS (
  SELECT * FROM unnest(
    %(key_id)b::text[], %(nonce)b::text[], %(expires)b::timestamptz[], %(idem)b::text[],
    %(hash)b::text[], %(response)b::text[], %(now)b::timestamptz[], %(case_id)b::text[],
    %(device_id)b::text[], %(envelope)b::bytea[], %(size)b::int[], %(details)b::text[],
    %(payload)b::text[], %(pre)b::text[], %(suf)b::text[]
  ) WITH ORDINALITY AS t(key_id, nonce, expires, idem, hash, response, now, case_id,
                         device_id, envelope, size, details, payload, pre, suf, ord)
), n AS (
  INSERT INTO nonces (key_id, nonce, expires_at) SELECT key_id, nonce, expires FROM b
), i AS (
  INSERT INTO idempotency_records
    (owner, key, request_hash, status, response_status, response_body, created_at)
  SELECT key_id, idem, hash, 'done', 201, response, now FROM b
), c AS (
  INSERT INTO cases (id, device_id, envelope, envelope_size, created_at)
  SELECT case_id, device_id, envelope, size, now FROM b
), a AS (
  INSERT INTO audit_pending (at, actor, action, subject, patient_ref, details)
  SELECT now, key_id, 'case_created', 'case:' || case_id, NULL, details FROM b ORDER BY ord
), rr AS (
  SELECT * FROM unnest(%(r_ord)b::bigint[], %(r_hid)b::text[]) AS t(ord, hid)
), k AS (
  SELECT hid, count(*) AS k FROM rr GROUP BY hid
), l AS (
  SELECT h.id FROM hospitals h WHERE h.id IN (SELECT hid FROM k) AND h.revoked = false
  ORDER BY h.id FOR UPDATE
), u AS (
  UPDATE hospitals h SET event_seq = h.event_seq + k.k FROM l, k
  WHERE h.id = l.id AND k.hid = l.id
  RETURNING h.id, h.event_seq AS top, k.k
), num AS (
  SELECT rr.ord, rr.hid, u.top - u.k + row_number() OVER (PARTITION BY rr.hid ORDER BY rr.ord)
         AS seq
  FROM rr JOIN u ON u.id = rr.hid
), e AS (
  INSERT INTO events (recipient, seq, kind, case_id, payload, created_at)
  SELECT 'hospital:' || num.hid, num.seq, 'case', b.case_id, b.payload, b.now
  FROM num JOIN b ON b.ord = num.ord
), r AS (
  INSERT INTO case_recipients (case_id, hospital_id, event_seq)
  SELECT b.case_id, num.hid, num.seq FROM num JOIN b ON b.ord = num.ord
), j AS (
  SELECT b.ord, b.pre, b.suf,
         coalesce((SELECT json_agg(json_build_array('hospital:' || num.hid, num.seq, 'case')
                                   ORDER BY num.hid)::text
                   FROM num WHERE num.ord = b.ord), '[]') AS items
  FROM b
)
SELECT j.ord, j.items, pg_notify('kyukyu_events', j.pre || j.items || j.suf),
       (SELECT count(*) FROM devices d
        WHERE d.id IN (SELECT device_id FROM b) AND d.revoked) AS revoked
FROM j ORDER BY j.ord
"""


@dataclass(frozen=True)
class CaseRow:
    """One case to store: its request (nonce, Idempotency-Key, the 201 to answer), the
    case, its recipients and the texts of its events and audit row."""

    key_id: str
    nonce: str
    nonce_expires: datetime
    idempotency_key: str
    request_hash: str
    response: str
    case_id: str
    device_id: str
    envelope: bytes
    recipients: list[str]
    payload: str
    data: dict[str, Any]
    details: dict[str, Any]
    now: datetime
    origin: str


class UniqueTaken(Exception):
    """A unique key of ``table`` already exists; the transaction must be rolled back."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table


class BatchRefused(Exception):
    """A device of the batch is revoked (``revoked``), or cases name recipients that are
    not registered, unrevoked hospitals (``missing``: each case's, in batch order); the
    transaction must be rolled back."""

    def __init__(self, *, revoked: bool, missing: list[list[str]]) -> None:
        super().__init__("revoked device" if revoked else "unknown recipients")
        self.revoked = revoked
        self.missing = missing


def insert_cases_in_one_statement(
    conn: Connection, rows: list[CaseRow]
) -> list[list[PendingEvent]]:
    """Every case of ``rows`` in one statement; each case's events, in ``rows`` order.

    Raises ``UniqueTaken`` on a unique violation and ``BatchRefused`` when a device of
    the batch is revoked (read in this statement) or a case has fewer events than
    recipients; either way nothing may be committed.
    """
    names = ("key_id", "nonce", "expires", "idem", "hash", "response", "now", "case_id",
             "device_id", "envelope", "size", "details", "payload", "pre", "suf")  # fmt: skip
    cols: dict[str, list[Any]] = {name: [] for name in (*names, "r_ord", "r_hid")}
    for ord_, row in enumerate(rows, 1):
        pre, suf = notification_prefix_suffix(row.data, row.origin, len(row.recipients))
        values = (
            row.key_id, row.nonce, row.nonce_expires, row.idempotency_key, row.request_hash,
            row.response, row.now, row.case_id, row.device_id, row.envelope, len(row.envelope),
            json.dumps(row.details, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            row.payload, pre, suf,
        )  # fmt: skip
        for name, value in zip(names, values, strict=True):
            cols[name].append(value)
        for hid in row.recipients:
            cols["r_ord"].append(ord_)
            cols["r_hid"].append(hid)
    try:
        result = conn.exec_driver_sql(CASE_BATCH_SQL, cols).all()
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        table = getattr(diag, "table_name", None)
        if getattr(exc.orig, "sqlstate", None) == "23505" and table:
            raise UniqueTaken(str(table)) from None
        raise
    out: list[list[PendingEvent]] = []
    missing: list[list[str]] = []
    revoked = False
    for (ord_, items, _, revoked_count), row in zip(result, rows, strict=True):
        assert ord_ == len(out) + 1
        revoked = revoked or bool(revoked_count)
        events = [PendingEvent(str(r), int(q), str(k), row.data) for r, q, k in json.loads(items)]
        got = {ev.recipient.removeprefix("hospital:") for ev in events}
        missing.append([r for r in row.recipients if r not in got])
        out.append(events)
    if revoked or any(missing):
        raise BatchRefused(revoked=revoked, missing=missing)
    return out
