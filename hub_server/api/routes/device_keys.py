"""Device keys for hospitals: the key a sealed case's signature is checked against.

The hub signs the answer with its own key, so a hospital checks it against the
pinned hub key just like devices check the hospital directory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlmodel import select

from hub_server import crud
from hub_server.api.deps import HubDep, SessionDep, require
from hub_server.api.routes._common import ERRORS
from hub_server.core.db import utcnow
from hub_server.core.errors import NotFound
from hub_server.models import Device
from hub_server.schemas import (
    DeviceKeyBody,
    RosterBody,
    RosterDevice,
    SignedDeviceKey,
    SignedRoster,
)
from sync.signed import canonical_json

router = APIRouter(tags=["devices"], responses=ERRORS)

HospitalOrStaff = Annotated[crud.Principal, Depends(require("hospital", "operator", "technician"))]


@router.get("/v1/devices/roster", response_model=SignedRoster)
def device_roster(caller: HospitalOrStaff, hub: HubDep, session: SessionDep) -> SignedRoster:
    """Every enrolled device (key, fire department, revocation), signed by the hub: what a
    hospital trusts on the direct route while the platform is out (docs/disaster.md).

    ``version`` = devices enrolled + devices revoked: each enrollment and each revocation
    adds one and nothing takes one away, so a hospital can refuse an older roster."""
    devices = session.exec(select(Device).order_by(Device.id)).all()
    body = RosterBody(
        version=len(devices) + sum(1 for d in devices if d.revoked),
        issued_at=utcnow().isoformat(),
        devices=[
            RosterDevice(
                id=d.id,
                public_key=d.public_key,
                fire_department=d.fire_department,
                revoked=d.revoked,
            )
            for d in devices
        ],
    )
    signature = hub.hub_key.sign(canonical_json(body.model_dump(mode="json")))
    return SignedRoster(roster=body, key_id=hub.hub_key.key_id, signature=signature)


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
    device = session.exec(select(Device).where(Device.id == device_id)).first()
    if device is None:
        raise NotFound("unknown_device", "no such device", "該当する端末がありません。")
    body = DeviceKeyBody(
        device_id=device.id,
        public_key=device.public_key,
        fire_department=device.fire_department,
        revoked=device.revoked,
        revoked_at=device.revoked_at,
        issued_at=utcnow().isoformat(),
    )
    signature = hub.hub_key.sign(canonical_json(body.model_dump(mode="json")))
    return SignedDeviceKey(device=body, key_id=hub.hub_key.key_id, signature=signature)
