"""Revoking an identity (device, hospital, operator, technician): audited, and every open
stream of it ends within a second, in every hub process.

Authentication reads the ``revoked`` column on every request, so new requests are
refused at once. Open event streams are told three ways: in this process directly
(``EventBus.revoke``, by the caller after the commit); on PostgreSQL by
``NOTIFY kyukyu_revoked`` sent with the commit (every process's listener ends its
streams); on SQLite, where there is no notification, each process polls the audit trail
for revocations (``hub_server.core.revocation_watch``, every 0.5 s by default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from hub_server.core.audit import append_audit
from hub_server.core.errors import Conflict, NotFound
from hub_server.core.events import REVOKED_CHANNEL
from hub_server.models import Device, Hospital, Operator

__all__ = ["KINDS", "REVOKED_ACTIONS", "revoke_identity"]

KINDS = ("device", "hospital", "operator", "technician")
#: Audit actions of revocations (what the SQLite watcher looks for).
REVOKED_ACTIONS = tuple(f"{kind}_revoked" for kind in KINDS)


def revoke_identity(
    session: Session,
    *,
    kind: str,
    ident: str,
    actor: str,
    now: datetime,
    fire_department: str | None = None,
    reason: str | None = None,
) -> str:
    """Revoke and commit; return the identity's key id (``device:<id>``...).

    ``fire_department``: only a device of that fire department may be revoked (a
    technician's scope); anything else is 404, as for an unknown id.
    """
    row: Any
    if kind == "device":
        row = session.get(Device, ident)
        if row is not None and fire_department is not None:
            row = row if row.fire_department == fire_department else None
    elif kind == "hospital":
        row = session.get(Hospital, ident)
    elif kind in ("operator", "technician"):
        row = session.get(Operator, ident)
        row = row if row is not None and row.role == kind else None
    else:
        raise NotFound("unknown_kind", f"no such kind of identity: {kind}")
    if row is None:
        raise NotFound(f"unknown_{kind}", f"no such {kind}")
    key_id = f"{'operator' if kind == 'technician' else kind}:{row.id}"
    if key_id == actor:
        raise Conflict("cannot_revoke_self", "a caller cannot revoke itself")
    was_revoked = bool(row.revoked)
    if not was_revoked:
        row.revoked = True
        if isinstance(row, Device):
            row.revoked_at = now
        session.add(row)
        details: dict[str, Any] = {}
        if isinstance(row, Device):
            details["fire_department"] = row.fire_department
        if reason:
            details["reason"] = reason[:200]
        append_audit(
            session, actor=actor, action=f"{kind}_revoked", subject=key_id, details=details, now=now
        )
    if session.get_bind().dialect.name == "postgresql":
        # Sent with the commit: every hub process ends this identity's streams.
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": REVOKED_CHANNEL, "p": key_id})
    session.commit()
    return key_id
