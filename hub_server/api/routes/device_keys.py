"""Device keys for hospitals: the key a sealed case's signature is checked against, and
the roster of every device for the direct route (``services.device_roster``).

The hub signs the answer with its own key, so a hospital checks it against the
pinned hub key just like devices check the hospital directory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from hub_server import crud
from hub_server.api.deps import HubDep, SessionDep, require
from hub_server.api.routes._common import ERRORS
from hub_server.schemas import SignedDeviceKey, SignedRoster
from hub_server.services import device_roster as roster

router = APIRouter(tags=["devices"], responses=ERRORS)

HospitalOrStaff = Annotated[crud.Principal, Depends(require("hospital", "operator", "technician"))]


@router.get("/v1/devices/roster", response_model=SignedRoster)
def device_roster(caller: HospitalOrStaff, hub: HubDep, session: SessionDep) -> SignedRoster:
    """Every enrolled device (key, fire department, revocation), signed by the hub: what a
    hospital trusts on the direct route while the platform is out (docs/disaster.md).

    ``version`` = devices enrolled + devices revoked + the event gaps of the restores in
    the audit chain: it rises across ``kyukyu hub restore`` too, so a hospital can refuse
    an older roster (the limit: docs/hub.md "Restore")."""
    return roster.signed_roster(hub, session)


@router.get("/v1/devices/{device_id}/key", response_model=SignedDeviceKey)
def device_key(
    device_id: Annotated[str, Path(min_length=1, max_length=40)],
    caller: HospitalOrStaff,
    hub: HubDep,
    session: SessionDep,
) -> SignedDeviceKey:
    """The enrolled Ed25519 key of a device, signed by the hub.

    A revoked device's key is still given (with ``revoked``): cases it sent
    before it was revoked were accepted by the hub and stay verifiable.
    """
    return roster.signed_device_key(hub, session, device_id)
