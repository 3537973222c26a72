"""Deferred request nonces: a route that records the nonce in its own transaction
records it here, on its own, when that transaction did not commit."""

from __future__ import annotations

from hub_server import crud
from hub_server.core.errors import RequestReplayed
from hub_server.core.state import HubState

__all__ = ["record_pending_nonce"]


def record_pending_nonce(hub: HubState, principal: crud.Principal) -> None:
    """Record a deferred nonce on its own (for the paths that did not commit it);
    ``RequestReplayed`` on a replay. Idempotent for one principal object."""
    if principal.nonce is None or principal.nonce_expires is None:
        return
    nonce, principal.nonce = principal.nonce, None
    with hub.autocommit_connection() as conn:
        fresh = crud.record_nonce(
            conn, key_id=principal.key_id, nonce=nonce, expires_at=principal.nonce_expires
        )
    if not fresh:
        raise RequestReplayed
