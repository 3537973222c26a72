"""Restore markers: a database restored from a backup says so, signed by the hub key.

A restore takes the chain back to the backup's head, which against a later checkpoint
looks exactly like a truncation. ``kyukyu hub restore`` therefore records, in one
transaction right after the restore, a marker ``{"restore": {format, seq, hash, at,
backup_sha256, event_gap}, "key_id", "signature"}`` (the signed-document format of the
checkpoints): the head it restored to (seq, hash), when, and which backup. The marker is
the details of the audit row at ``seq + 1`` (action ``hub_restored``) and is appended to
the checkpoint stream too.

``verify_against_checkpoints`` then excuses a checkpoint (or an older marker) that the
chain no longer holds only when a genuine marker in the chain restored to an earlier seq
after that checkpoint was taken (checkpoint ``seq`` > marker ``seq``, checkpoint ``at``
<= marker ``at``). A marker not signed by the hub key, or not in the chain at its place,
excuses nothing: a truncation without one is still reported.

Every recipient's event counter moves on by ``event_gap`` at the restore: hospitals and
devices may already hold events numbered past the backup's counters (delivered after the
backup was taken), and would skip new events numbered below what they saw. The device
roster's version moves on by the same gaps (``event_gaps``; services.device_roster).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, update
from sqlalchemy import select as sa_select

from hub_server.core.audit.chain import append_audit, chain_pending
from hub_server.models import AuditEntry, AuditHead, Device, Hospital
from sync.signed import BadHubSignature, verify_document

__all__ = [
    "DEFAULT_EVENT_GAP",
    "RESTORE_ACTION",
    "RESTORE_FIELD",
    "RESTORE_FORMAT",
    "event_gaps",
    "markers_in_chain",
    "record_restore",
    "verified_marker",
]

RESTORE_FIELD = "restore"
RESTORE_FORMAT = "kyukyu-audit-restore-v1"
RESTORE_ACTION = "hub_restored"
#: Event numbers skipped per recipient at a restore: more than a recipient is sent between
#: a backup and its restore (1,000 cases a day for over two years).
DEFAULT_EVENT_GAP = 1_000_000
_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
_DEVICES: Table = Device.__table__  # type: ignore[attr-defined]
_HOSPITALS: Table = Hospital.__table__  # type: ignore[attr-defined]


def record_restore(
    conn: Connection,
    hub_key: Any,
    *,
    now: datetime,
    backup_sha256: str,
    event_gap: int = DEFAULT_EVENT_GAP,
) -> dict[str, Any]:
    """In the caller's transaction: chain what is pending, sign the head as a restore
    marker, move every event counter on by ``event_gap`` and append the marker's audit
    row (right after the head it names). Returns the signed marker."""
    while chain_pending(conn) > 0:
        pass
    seq, digest = conn.execute(
        sa_select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
    ).one()
    body = {
        "format": RESTORE_FORMAT,
        "seq": int(seq),
        "hash": str(digest),
        "at": now.isoformat(timespec="microseconds"),
        "backup_sha256": backup_sha256,
        "event_gap": event_gap,
    }
    marker: dict[str, Any] = hub_key.sign_document(RESTORE_FIELD, body)
    for table in (_DEVICES, _HOSPITALS):
        conn.execute(update(table).values(event_seq=table.c.event_seq + event_gap))
    append_audit(
        conn, actor="cli", action=RESTORE_ACTION, subject="hub", details={"marker": marker}, now=now
    )
    return marker


def event_gaps(conn: Connection, *, after: int = 0, upto: int | None = None) -> int:
    """The sum of the ``event_gap`` of the restore markers in chain rows ``after`` < seq
    <= ``upto`` (all rows after ``after`` when None), signatures not checked. A row whose
    marker has no usable gap counts 0."""
    query = sa_select(_AUDIT.c.details).where(
        _AUDIT.c.seq > after, _AUDIT.c.action == RESTORE_ACTION
    )
    if upto is not None:
        query = query.where(_AUDIT.c.seq <= upto)
    total = 0
    for details in conn.execute(query).scalars():
        try:
            gap = json.loads(details)["marker"][RESTORE_FIELD]["event_gap"]
        except (ValueError, KeyError, TypeError):
            continue
        if type(gap) is int and gap > 0:
            total += gap
    return total


def verified_marker(doc: dict[str, Any], public_key: Any) -> dict[str, Any] | None:
    """The body of a restore marker signed by ``public_key``; None if ``doc`` is not a
    restore marker. ``BadHubSignature`` if it claims to be one and is not signed so."""
    if RESTORE_FIELD not in doc:
        return None
    body = verify_document(doc, RESTORE_FIELD, public_key)
    if body.get("format") != RESTORE_FORMAT:
        raise BadHubSignature("not a restore marker")
    return body


def markers_in_chain(conn: Connection) -> list[tuple[int, dict[str, Any]]]:
    """(row seq, marker document) of every ``hub_restored`` row of the chain."""
    rows = conn.execute(
        sa_select(_AUDIT.c.seq, _AUDIT.c.details)
        .where(_AUDIT.c.action == RESTORE_ACTION)
        .order_by(_AUDIT.c.seq)
    ).all()
    out = []
    for seq, details in rows:
        try:
            marker = json.loads(details)["marker"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(marker, dict):
            out.append((int(seq), marker))
    return out
