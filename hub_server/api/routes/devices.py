"""Enrollment tokens, device enrollment and revocation."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from hub_server import crud
from hub_server.api.deps import DeviceDep, HubDep, SessionDep, StaffDep
from hub_server.api.routes._common import ERRORS, PUBLIC_ERRORS
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import NotAllowed
from hub_server.crud import availability
from hub_server.models import Device
from hub_server.schemas import (
    DevicePublic,
    EnrollmentTokenCreate,
    EnrollmentTokenPublic,
    EnrollRequest,
    EnrollResponse,
)
from hub_server.services import identity_revocation

router = APIRouter(tags=["devices"], responses=ERRORS)


@router.post("/v1/enrollment-tokens", response_model=EnrollmentTokenPublic, status_code=201)
def create_enrollment_token(
    body: EnrollmentTokenCreate, caller: StaffDep, hub: HubDep, session: SessionDep
) -> EnrollmentTokenPublic:
    """A one-time, short-lived token for one device of a fire department."""
    if (
        caller.kind == "technician"
        and getattr(caller.row, "fire_department", None) != body.fire_department
    ):
        raise NotAllowed("forbidden", "a technician enrolls devices of their own fire department")
    now = utcnow()
    token, row = crud.create_enrollment_token(
        session,
        fire_department=body.fire_department,
        region=availability.check_region(session, body.region),
        created_by=caller.key_id,
        ttl=timedelta(seconds=hub.settings.enrollment_token_ttl_seconds),
        now=now,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="enrollment_token_created",
        subject=f"fire_department:{body.fire_department}"[:120],
        details={"expires_at": row.expires_at.isoformat(), "region": body.region},
        now=now,
    )
    session.commit()
    return EnrollmentTokenPublic(
        token=token, expires_at=row.expires_at, fire_department=row.fire_department
    )


@router.post(
    "/v1/devices/enroll", response_model=EnrollResponse, status_code=201, responses=PUBLIC_ERRORS
)
def enroll_device(body: EnrollRequest, session: SessionDep) -> EnrollResponse:
    """Redeem a token once with the device's Ed25519 public key (no signature: no key yet)."""
    now = utcnow()
    device = crud.redeem_enrollment_token(
        session, token=body.token, public_key=body.public_key, name=body.name, now=now
    )
    append_audit(
        session,
        actor=f"device:{device.id}",
        action="device_enrolled",
        subject=f"device:{device.id}",
        details={"fire_department": device.fire_department, "name": device.name},
        now=now,
    )
    session.commit()
    return EnrollResponse(device_id=device.id, fire_department=device.fire_department)


@router.post("/v1/devices/{device_id}/revoke", response_model=DevicePublic)
def revoke_device(
    device_id: str, caller: StaffDep, hub: HubDep, session: SessionDep
) -> DevicePublic:
    """Revoke a device: nothing it sends is accepted any more, its streams end at once."""
    fire_department = None
    if caller.kind == "technician":
        fire_department = getattr(caller.row, "fire_department", None) or "\x00"
    key_id = identity_revocation.revoke_identity(
        session,
        kind="device",
        ident=device_id,
        actor=caller.key_id,
        now=utcnow(),
        fire_department=fire_department,
    )
    hub.bus.revoke(key_id)
    device = session.get(Device, device_id)
    assert device is not None
    return DevicePublic(
        id=device.id, name=device.name, fire_department=device.fire_department, revoked=True
    )


@router.get("/v1/devices/me", response_model=DevicePublic)
def me(caller: DeviceDep, session: SessionDep) -> DevicePublic:
    device = session.get(Device, caller.id)
    assert device is not None
    return DevicePublic(
        id=device.id,
        name=device.name,
        fire_department=device.fire_department,
        revoked=device.revoked,
    )
