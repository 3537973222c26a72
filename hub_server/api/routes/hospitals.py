"""Hospital registration and the signed directory (nearest first)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from hub_server import crud
from hub_server.api.deps import HubDep, OperatorDep, SessionDep, SignedDep
from hub_server.api.routes._common import ERRORS, PUBLIC_ERRORS
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import NotAllowed
from hub_server.schemas import (
    DirectoryBody,
    DirectoryEntry,
    HospitalCreate,
    HospitalCreated,
    HospitalEnrolled,
    HospitalEnrollRequest,
    HospitalTokenCreate,
    HospitalTokenPublic,
    IdentityRevoked,
    RevokeRequest,
    SignedDirectory,
)
from hub_server.services import identity_revocation
from sync.signed import canonical_json

router = APIRouter(tags=["hospitals"], responses=ERRORS)


@router.post("/v1/hospitals", response_model=HospitalCreated, status_code=201)
def register_hospital(
    body: HospitalCreate, caller: OperatorDep, session: SessionDep
) -> HospitalCreated:
    now = utcnow()
    hospital = crud.create_hospital(
        session,
        name=body.name,
        lat=body.lat,
        lon=body.lon,
        hpke_public_key=body.hpke_public_key,
        signing_public_key=body.signing_public_key,
        now=now,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="hospital_registered",
        subject=f"hospital:{hospital.id}",
        details={"name": hospital.name},
        now=now,
    )
    session.commit()
    return HospitalCreated(hospital_id=hospital.id)


@router.post("/v1/hospital-enrollment-tokens", response_model=HospitalTokenPublic, status_code=201)
def create_hospital_token(
    body: HospitalTokenCreate, caller: OperatorDep, hub: HubDep, session: SessionDep
) -> HospitalTokenPublic:
    """A one-time token with which one hospital registers its own keys and location."""
    now = utcnow()
    token, row = crud.create_hospital_token(
        session,
        name=body.name,
        created_by=caller.key_id,
        ttl=timedelta(seconds=hub.settings.enrollment_token_ttl_seconds),
        now=now,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="hospital_token_created",
        subject=f"hospital_name:{body.name}"[:120],
        details={"expires_at": row.expires_at.isoformat()},
        now=now,
    )
    session.commit()
    return HospitalTokenPublic(token=token, expires_at=row.expires_at, name=row.name)


@router.post(
    "/v1/hospitals/enroll",
    response_model=HospitalEnrolled,
    status_code=201,
    responses=PUBLIC_ERRORS,
)
def enroll_hospital(body: HospitalEnrollRequest, session: SessionDep) -> HospitalEnrolled:
    """Redeem an operator's token once with the hospital's own public keys (unsigned)."""
    now = utcnow()
    hospital = crud.redeem_hospital_token(
        session,
        token=body.token,
        lat=body.lat,
        lon=body.lon,
        hpke_public_key=body.hpke_public_key,
        signing_public_key=body.signing_public_key,
        now=now,
    )
    append_audit(
        session,
        actor=f"hospital:{hospital.id}",
        action="hospital_enrolled",
        subject=f"hospital:{hospital.id}",
        details={"name": hospital.name},
        now=now,
    )
    session.commit()
    return HospitalEnrolled(hospital_id=hospital.id, name=hospital.name)


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
    ranked = crud.hospitals_nearest(session, lat=lat, lon=lon, limit=limit)
    body = DirectoryBody(
        issued_at=utcnow().isoformat(),
        lat=lat,
        lon=lon,
        hospitals=[
            DirectoryEntry(
                id=h.id,
                name=h.name,
                lat=h.lat,
                lon=h.lon,
                distance_km=round(d, 3),
                hpke_public_key=h.hpke_public_key,
                signing_public_key=h.signing_public_key,
            )
            for h, d in ranked
        ],
    )
    signature = hub.hub_key.sign(canonical_json(body.model_dump(mode="json")))
    return SignedDirectory(directory=body, key_id=hub.hub_key.key_id, signature=signature)
