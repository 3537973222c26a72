"""A new case in one PostgreSQL statement (one round trip before the commit).

Data-modifying CTEs record the request's nonce, the Idempotency-Key with its final
response, the case, the pending audit row, the recipients' next event numbers (rows
locked in id order first, so concurrent cases never deadlock), the events and the
recipient rows, and send the ``NOTIFY`` (delivered at commit). A unique violation names
its table: ``nonces`` (replay), ``idempotency_records`` (key taken), ``cases``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from hub_server.core.events import CHANNEL, PendingEvent, notification_prefix_suffix

__all__ = ["CASE_STATEMENT_SQL", "UniqueTaken", "insert_case_in_one_statement"]

# Public: benchmarks/hub_load.py runs this same statement without the web layer (the
# database's own limit).
CASE_STATEMENT_SQL = """
WITH n AS (
  INSERT INTO nonces (key_id, nonce, expires_at) VALUES (%(key_id)s, %(nonce)s, %(expires)s)
), i AS (
  INSERT INTO idempotency_records
    (owner, key, request_hash, status, response_status, response_body, created_at)
  VALUES (%(key_id)s, %(idem)s, %(hash)s, 'done', 201, %(response)s, %(now)s)
), c AS (
  INSERT INTO cases (id, device_id, envelope, envelope_size, created_at)
  VALUES (%(case_id)s, %(device_id)s, %(envelope)s, %(size)s, %(now)s)
), a AS (
  INSERT INTO audit_pending (at, actor, action, subject, patient_ref, details)
  VALUES (%(now)s, %(key_id)s, 'case_created', %(subject)s, NULL, %(details)s)
), l AS (
  SELECT id FROM hospitals WHERE id = ANY(%(ids)s) AND revoked = false ORDER BY id FOR UPDATE
), u AS (
  UPDATE hospitals h SET event_seq = h.event_seq + 1 FROM l WHERE h.id = l.id
  RETURNING h.id, h.event_seq
), e AS (
  INSERT INTO events (recipient, seq, kind, case_id, payload, created_at)
  SELECT 'hospital:' || u.id, u.event_seq, 'case', %(case_id)s, %(payload)s, %(now)s FROM u
), r AS (
  INSERT INTO case_recipients (case_id, hospital_id, event_seq)
  SELECT %(case_id)s, u.id, u.event_seq FROM u
), j AS (
  SELECT coalesce(json_agg(json_build_array('hospital:' || u.id, u.event_seq, 'case')
                           ORDER BY u.id)::text, '[]') AS items FROM u
)
SELECT j.items, pg_notify('kyukyu_events', %(pre)s || j.items || %(suf)s) FROM j
"""


assert CHANNEL == "kyukyu_events"


class UniqueTaken(Exception):
    """A unique key of ``table`` already exists; the transaction must be rolled back."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table


def insert_case_in_one_statement(
    conn: Connection,
    *,
    key_id: str,
    nonce: str,
    nonce_expires: datetime,
    idempotency_key: str,
    request_hash: str,
    response: str,
    case_id: str,
    device_id: str,
    envelope: bytes,
    recipients: list[str],
    payload: str,
    data: dict[str, Any],
    details: dict[str, Any],
    now: datetime,
    origin: str,
) -> list[PendingEvent]:
    """Everything of a new case in one statement; returns the recipients' events (only
    the registered, not revoked hospitals among ``recipients``: the caller checks)."""
    pre, suf = notification_prefix_suffix(data, origin, len(recipients))
    try:
        row = conn.exec_driver_sql(
            CASE_STATEMENT_SQL,
            {
                "key_id": key_id,
                "nonce": nonce,
                "expires": nonce_expires,
                "idem": idempotency_key,
                "hash": request_hash,
                "response": response,
                "now": now,
                "case_id": case_id,
                "device_id": device_id,
                "envelope": envelope,
                "size": len(envelope),
                "subject": f"case:{case_id}",
                "details": json.dumps(
                    details, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ),
                "ids": recipients,
                "payload": payload,
                "pre": pre,
                "suf": suf,
            },
        ).one()
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        table = getattr(diag, "table_name", None)
        if getattr(exc.orig, "sqlstate", None) == "23505" and table:
            raise UniqueTaken(str(table)) from None
        raise
    return [PendingEvent(str(r), int(q), str(k), data) for r, q, k in json.loads(row[0])]
