"""The hub's own public key and health.

``GET /v1/health`` is unsigned and public: it says the hub answers, nothing more.
How many streams are open (who is connected, how loaded the hub is) is on the
metrics port (``kyukyu_hub_streams_open``, 127.0.0.1 only), never here.
"""

from __future__ import annotations

from fastapi import APIRouter

from hub_server.api.deps import HubDep
from hub_server.schemas import HubKeyPublic

router = APIRouter(tags=["hub"])


@router.get("/v1/hub-key", response_model=HubKeyPublic)
def hub_key(hub: HubDep) -> HubKeyPublic:
    """The Ed25519 key that signs the hospital directory and revocation snapshots."""
    return HubKeyPublic(key_id=hub.hub_key.key_id, public_key=hub.hub_key.public_b64)


@router.get("/v1/health")
def health() -> dict[str, str]:
    """Healthy: the hub answers. No counts, no versions (the public port tells no load)."""
    return {"status": "ok"}
