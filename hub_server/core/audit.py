"""The append-only, hash-chained audit trail.

Each row stores ``hash = sha256(prev_hash || canonical_json(row))``; the single
``audit_head`` row holds the last sequence number and hash. Writers first UPDATE
the head (a row lock on PostgreSQL, the write lock on SQLite), so the chain never
forks even with several hub processes. ``verify_chain`` recomputes everything and
reports the first row that does not match (edited, deleted, reordered or truncated).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from hub_server.models import AuditEntry, AuditHead, AuditPending
from sync.signed import canonical_json

__all__ = [
    "CHECKPOINT_FORMAT",
    "AuditVerdict",
    "append_audit",
    "append_audit_conn",
    "chain_pending",
    "entry_hash",
    "queue_audit_conn",
    "read_checkpoints",
    "signed_checkpoint",
    "verify_against_checkpoints",
    "verify_chain",
]

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
    if conn.dialect.name == "postgresql":
        # Committed pending rows (cases) first, so the chain keeps cause before effect.
        chain_pending(conn)
    # One statement takes the lock and reads the previous link of the chain.
    row = conn.execute(_BUMP_HEAD).one()
    seq, prev_hash = int(row[0]), str(row[1])
    text = canonical_json(details).decode()
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


def queue_audit_conn(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
    patient_ref: str | None = None,
) -> None:
    """Commit an audit row with the caller's transaction without taking the head lock.

    The row is in ``audit_pending`` (durable with the action it records) until
    ``chain_pending`` links it into the chain; call that after the commit.
    """
    conn.execute(
        _PENDING.insert(),
        {
            "at": now,
            "actor": actor,
            "action": action,
            "subject": subject,
            "patient_ref": patient_ref,
            "details": canonical_json(details).decode(),
        },
    )


def chain_pending(conn: Connection, *, batch: int = 1000) -> int:
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
        digest = entry_hash(
            prev,
            seq=seq,
            at=r.at,
            actor=r.actor,
            action=r.action,
            subject=r.subject,
            patient_ref=r.patient_ref,
            details=r.details,
        )
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
        # One statement; the rows' content is copied inside the database, only the
        # chain's numbers and hashes travel (binary arrays).
        conn.exec_driver_sql(
            _MOVE_PENDING_PG,
            {
                "ids": [r.id for r in rows],
                "seqs": [e["seq"] for e in entries],
                "prevs": [e["prev_hash"] for e in entries],
                "hashes": [e["hash"] for e in entries],
                "s": seq,
                "h": prev,
            },
        )
        return len(rows)
    conn.execute(_AUDIT.insert(), entries)
    conn.execute(_DROP_PENDING, {"ids": [r.id for r in rows]})
    conn.execute(_MOVE_HEAD, {"s": seq, "h": prev})
    return len(rows)


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


# -- signed checkpoints ------------------------------------------------------------------
#
# The chain alone proves nothing against someone who can write the database: deleting
# the last rows and moving ``audit_head`` back, or rewriting a row and every hash after
# it, leaves a chain that verifies. A checkpoint is the head (seq, hash) signed with the
# hub key; kept outside the database (a file, syslog), it pins the chain: the rows up to
# its seq must still exist with exactly that hash at that seq.

CHECKPOINT_FIELD = "checkpoint"
CHECKPOINT_FORMAT = "kyukyu-audit-checkpoint-v1"
_HEAD_NOW = sa_select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_HASH_AT = sa_select(_AUDIT.c.hash).where(_AUDIT.c.seq == bindparam("s"))


def signed_checkpoint(conn: Connection, hub_key: Any, *, now: datetime) -> dict[str, Any]:
    """The current chain head signed with ``hub_key`` (a ``HubKey``):
    ``{"checkpoint": {format, seq, hash, at}, "key_id", "signature"}`` (sync.signed)."""
    row = conn.execute(_HEAD_NOW).one()
    body = {
        "format": CHECKPOINT_FORMAT,
        "seq": int(row[0]),
        "hash": str(row[1]),
        "at": now.isoformat(timespec="microseconds"),
    }
    document: dict[str, Any] = hub_key.sign_document(CHECKPOINT_FIELD, body)
    return document


def read_checkpoints(text: str) -> list[dict[str, Any]]:
    """Checkpoints from a file's text: JSON lines, or one JSON document or list."""
    import json

    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        docs = json.loads(stripped)
    else:
        docs = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    if not all(isinstance(d, dict) for d in docs):
        raise ValueError("a checkpoint is a JSON object")
    return list(docs)


def verify_against_checkpoints(
    session: Session, checkpoints: list[dict[str, Any]], public_key: Any
) -> AuditVerdict:
    """The chain must verify, and hold every checkpoint: a row at its seq with its hash.

    ``public_key`` (Ed25519) is the hub's pinned key: a checkpoint it did not sign is
    refused (``bad checkpoint signature``).
    """
    from sync.signed import BadHubSignature, verify_document

    verdict = verify_chain(session)
    if not verdict.ok:
        return verdict
    conn = session.connection()
    for doc in checkpoints:
        try:
            body = verify_document(doc, CHECKPOINT_FIELD, public_key)
        except BadHubSignature:
            return AuditVerdict(False, verdict.rows, None, "bad checkpoint signature")
        if body.get("format") != CHECKPOINT_FORMAT:
            return AuditVerdict(False, verdict.rows, None, "not an audit checkpoint")
        seq, digest = int(body["seq"]), str(body["hash"])
        if seq > verdict.rows:
            return AuditVerdict(
                False,
                verdict.rows,
                seq,
                f"truncated: a checkpoint of {body['at']} saw {seq} rows, "
                f"the chain has {verdict.rows}",
            )
        if seq == 0:
            continue
        found = conn.execute(_HASH_AT, {"s": seq}).scalar()
        if found != digest:
            return AuditVerdict(
                False,
                verdict.rows,
                seq,
                f"rewritten: row {seq} differs from the checkpoint of {body['at']}",
            )
    return verdict
