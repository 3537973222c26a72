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
    refused (``bad checkpoint signature``).
    """
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
