"""Hospital registration, enrollment tokens, revocation and the signed directory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub_server.api.deps import HospitalDep, HubDep, OperatorDep, SessionDep, SignedDep
from hub_server.api.routes._common import ERRORS, PUBLIC_ERRORS
from hub_server.core.db import utcnow
from hub_server.core.errors import NotAllowed
from hub_server.models import Device, Hospital
from hub_server.schemas import (
    DirectAddressPublic,
    DirectAddressSet,
    HospitalCreate,
    HospitalCreated,
    HospitalEnrolled,
    HospitalEnrollRequest,
    HospitalKeyKindsPage,
    HospitalKeyPublish,
    HospitalKeysPublic,
    HospitalTokenCreate,
    HospitalTokenPublic,
    IdentityRevoked,
    RevokeRequest,
    SignedDirectory,
)
from hub_server.services import hospital_registry, identity_revocation

router = APIRouter(tags=["hospitals"], responses=ERRORS)


@router.post("/v1/hospitals", response_model=HospitalCreated, status_code=201)
def register_hospital(
    body: HospitalCreate, caller: OperatorDep, session: SessionDep
) -> HospitalCreated:
    return hospital_registry.register_hospital(session, actor=caller.key_id, body=body)


@router.post("/v1/hospital-enrollment-tokens", response_model=HospitalTokenPublic, status_code=201)
def create_hospital_token(
    body: HospitalTokenCreate, caller: OperatorDep, hub: HubDep, session: SessionDep
) -> HospitalTokenPublic:
    """A one-time token with which one hospital registers its own keys and location."""
    return hospital_registry.create_hospital_token(hub, session, actor=caller.key_id, body=body)


@router.post(
    "/v1/hospitals/enroll",
    response_model=HospitalEnrolled,
    status_code=201,
    responses=PUBLIC_ERRORS,
)
def enroll_hospital(body: HospitalEnrollRequest, session: SessionDep) -> HospitalEnrolled:
    """Redeem an operator's token once with the hospital's own public keys (unsigned)."""
    return hospital_registry.enroll_hospital(session, body)


@router.post("/v1/hospitals/{hospital_id}/revoke", response_model=IdentityRevoked)
def revoke_hospital(
    hospital_id: str,
    caller: OperatorDep,
    hub: HubDep,
    session: SessionDep,
    body: RevokeRequest | None = None,
) -> IdentityRevoked:
    """Revoke a hospital: refused on its next request, its streams end at once, and it
    leaves the directory."""
    key_id = identity_revocation.revoke_identity(
        session,
        kind="hospital",
        ident=hospital_id,
        actor=caller.key_id,
        now=utcnow(),
        reason=body.reason if body else None,
    )
    hub.bus.revoke(key_id)
    return IdentityRevoked(key_id=key_id, kind="hospital", revoked=True)


@router.get("/v1/hospitals/directory", response_model=SignedDirectory)
def directory(
    caller: SignedDep,
    hub: HubDep,
    session: SessionDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SignedDirectory:
    """Hospitals nearest first, signed by the hub key (devices check it offline)."""
    if caller.kind not in {"device", "operator", "technician"}:
        raise NotAllowed("forbidden", "only devices and staff read the directory")
    region = caller.row.region if isinstance(caller.row, Device) else None
    return hospital_registry.signed_directory(
        hub, session, lat=lat, lon=lon, limit=limit, region=region, staff=caller.kind != "device"
    )


@router.put("/v1/hospitals/me/direct", response_model=DirectAddressPublic)
def set_direct_address(
    body: DirectAddressSet, caller: HospitalDep, session: SessionDep
) -> DirectAddressPublic:
    """The hospital's direct-delivery address (HTTPS) and the TLS certificate devices pin:
    in the signed directory when its region opted in to the direct route."""
    hospital = session.get(Hospital, caller.id)
    assert hospital is not None  # the signed caller
    return hospital_registry.set_direct_address(session, hospital=hospital, body=body)


@router.put("/v1/hospitals/me/keys", response_model=HospitalKeysPublic)
def publish_hybrid_key(
    body: HospitalKeyPublish, caller: HospitalDep, session: SessionDep
) -> HospitalKeysPublic:
    """The hospital's hybrid (X-Wing) public key (``kyukyu hospital keys rotate``): in the
    signed directory from now on, so devices seal v2 to it. Audited."""
    hospital = session.get(Hospital, caller.id)
    assert hospital is not None  # the signed caller
    return hospital_registry.publish_hybrid_key(session, hospital=hospital, body=body)


@router.get("/v1/hospitals", response_model=HospitalKeyKindsPage)
def hospital_key_kinds(
    caller: OperatorDep,
    hub: HubDep,
    session: SessionDep,
    without_pq: bool = False,
) -> HospitalKeyKindsPage:
    """(operator) Every hospital and the key kinds it published; ``without_pq=true``: those
    still without a hybrid key (``kyukyu hub hospitals --without-pq``)."""
    return hospital_registry.hospital_key_kinds(hub, session, without_pq=without_pq)
