"""Hospitals' 応需状況 and the regions that scope it (docs/availability.md).

A hospital sets its own (``POST /v1/hospitals/me/availability``); devices read what
changed in their regions since a version (``GET /v1/availability?after=V``: the catch-up
of a device whose stream was down; live changes come on its event stream); operators
read every hospital's (the regional view) and set regions and their neighbours.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hub_server.api.deps import HospitalDep, HubDep, OperatorDep, SessionDep, SignedDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.errors import NotAllowed
from hub_server.crud import availability as crud
from hub_server.models import Device, Hospital
from hub_server.schemas import (
    AvailabilityDoc,
    AvailabilityPage,
    AvailabilitySet,
    RegionPublic,
    RegionSet,
)
from hub_server.services import availability

router = APIRouter(tags=["availability"], responses=ERRORS)

RegionPath = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.post("/v1/hospitals/me/availability", response_model=AvailabilityDoc)
def set_availability(
    body: AvailabilitySet, caller: HospitalDep, hub: HubDep, session: SessionDep
) -> AvailabilityDoc:
    """Change some of this hospital's statuses (the others stay); the whole new document
    is answered and pushed to the devices of its region and of the regions that list it."""
    assert isinstance(caller.row, Hospital)
    return availability.set_availability(
        hub, session, hospital=caller.row, actor=caller.key_id, body=body
    )


@router.get("/v1/hospitals/me/availability", response_model=AvailabilityDoc)
def own_availability(caller: HospitalDep, session: SessionDep) -> AvailabilityDoc:
    """This hospital's document as the platform holds it (version 0: never set)."""
    row = crud.availability_of(session, caller.id)
    if row is None:
        return AvailabilityDoc(
            hospital_id=caller.id, version=0, updated_at="1970-01-01T00:00:00Z", items={}
        )
    return availability.doc_of(row)


@router.get("/v1/availability", response_model=AvailabilityPage)
def availability_since(
    caller: SignedDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    region: Annotated[
        str | None, Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    ] = None,
) -> AvailabilityPage:
    """Documents newer than ``after``: a device's are those of the regions it sees; an
    operator's or technician's every hospital's (``region``: one region's), with names."""
    if caller.kind == "device":
        own = caller.row.region if isinstance(caller.row, Device) else None
        seen = crud.visible_regions(session, own)
        return availability.availability_page(session, after=after, regions=seen)
    if caller.kind not in {"operator", "technician"}:
        raise NotAllowed("forbidden", "only devices and staff read availability")
    scope = None if region is None else frozenset([region])
    return availability.availability_page(session, after=after, regions=scope, named=True)


@router.put("/v1/regions/{code}", response_model=RegionPublic)
def set_region(
    code: RegionPath, body: RegionSet, caller: OperatorDep, session: SessionDep
) -> RegionPublic:
    """Create or change a region and the regions whose hospitals its devices also see."""
    return availability.set_region(session, code=code, body=body, actor=caller.key_id)


@router.get("/v1/regions", response_model=list[RegionPublic])
def list_regions(caller: SignedDep, session: SessionDep) -> list[RegionPublic]:
    if caller.kind not in {"operator", "technician"}:
        raise NotAllowed("forbidden", "only staff list regions")
    return [
        RegionPublic(code=r.code, name=r.name, neighbours=n, direct_route=r.direct_route)
        for r, n in crud.regions(session)
    ]
