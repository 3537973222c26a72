"""Signed checkpoints of the audit chain.

The chain alone proves nothing against someone who can write the database: deleting
the last rows and moving ``audit_head`` back, or rewriting a row and every hash after
it, leaves a chain that verifies. A checkpoint is the head (seq, hash) signed with the
hub key; kept outside the database (a file, syslog), it pins the chain: the rows up to
its seq must still exist with exactly that hash at that seq.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session

from hub_server.core.audit.restore import RESTORE_FIELD, markers_in_chain, verified_marker
from hub_server.core.audit.verify import AuditVerdict, verify_chain
from hub_server.models import AuditEntry, AuditHead
from sync.signed import BadHubSignature, verify_document

__all__ = [
    "CHECKPOINT_FIELD",
    "CHECKPOINT_FORMAT",
    "read_checkpoints",
    "signed_checkpoint",
    "verify_against_checkpoints",
]

_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
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
    refused (``bad checkpoint signature``). ``checkpoints`` may hold restore markers too
    (``core.audit.restore``): a checkpoint the chain no longer holds is excused only by a
    genuine restore in the chain (signed, at its place) to an earlier row, made after the
    checkpoint was taken; the verdict's ``notes`` name every restore.
    """
    verdict = verify_chain(session)
    if not verdict.ok:
        return verdict
    conn = session.connection()
    restores: list[dict[str, Any]] = []
    for row_seq, marker in markers_in_chain(conn):
        try:
            found_marker = verified_marker(marker, public_key)
        except (BadHubSignature, KeyError, TypeError, ValueError):
            found_marker = None
        if found_marker is None:
            return AuditVerdict(
                False, verdict.rows, row_seq, "a restore marker not signed by the hub key"
            )
        seq = int(found_marker["seq"])
        held = seq == 0 or conn.execute(_HASH_AT, {"s": seq}).scalar() == found_marker["hash"]
        if seq != row_seq - 1 or not held:
            return AuditVerdict(
                False, verdict.rows, row_seq, "a restore marker that does not match the chain"
            )
        restores.append(found_marker)
    in_chain = {json.dumps(m, sort_keys=True) for _, m in markers_in_chain(conn)}
    notes = tuple(f"restored to row {b['seq']} at {b['at']}" for b in restores)

    def excused(seq: int, at: str) -> bool:
        """Taken before a genuine restore to an earlier row: that timeline was left."""
        when = datetime.fromisoformat(at)
        return any(
            seq > int(b["seq"]) and when <= datetime.fromisoformat(str(b["at"])) for b in restores
        )

    for doc in checkpoints:
        if RESTORE_FIELD in doc:
            try:
                marker_body = verified_marker(doc, public_key)
            except BadHubSignature:
                return AuditVerdict(False, verdict.rows, None, "bad restore marker signature")
            assert marker_body is not None
            if json.dumps(doc, sort_keys=True) in in_chain:
                continue
            # A marker of a timeline a later restore left (its row is seq + 1).
            if excused(int(marker_body["seq"]) + 1, str(marker_body["at"])):
                continue
            return AuditVerdict(
                False,
                verdict.rows,
                int(marker_body["seq"]) + 1,
                f"truncated: the restore marker of {marker_body['at']} is not in the chain",
            )
        try:
            body = verify_document(doc, CHECKPOINT_FIELD, public_key)
        except BadHubSignature:
            return AuditVerdict(False, verdict.rows, None, "bad checkpoint signature")
        if body.get("format") != CHECKPOINT_FORMAT:
            return AuditVerdict(False, verdict.rows, None, "not an audit checkpoint")
        seq, digest = int(body["seq"]), str(body["hash"])
        if excused(seq, str(body["at"])):
            continue  # the chain was restored to an earlier row after this checkpoint
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
    return AuditVerdict(True, verdict.rows, notes=notes)
