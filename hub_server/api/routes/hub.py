"""The hub's own public key and health."""

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
def health(hub: HubDep) -> dict[str, int | str]:
    return {"status": "ok", "streams": hub.bus.stream_count}
