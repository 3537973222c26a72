"""Mass-casualty incidents (多数傷病者, docs/mass-casualty.md): devices declare, register
tags and assign them; hospitals answer their capacities; operators read incidents and
tallies (no patient data anywhere here: the patients' data travel in their sealed cases)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from hub_server.api.deps import DeviceDep, HospitalDep, HubDep, SessionDep, SignedDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.errors import NotAllowed
from hub_server.models import Device, Hospital
from hub_server.services import incidents
from hub_server.services.incidents import Assignment, Capacity, Declaration, Registration

router = APIRouter(tags=["incidents"], responses=ERRORS)

IncidentPath = Annotated[str, Path(pattern=r"^inc-[0-9a-f]{16}$")]
TagPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,40}$")]


def _device(caller: Any) -> Device:
    assert isinstance(caller.row, Device)
    return caller.row


@router.post("/v1/incidents", status_code=201)
def declare(
    body: Declaration, caller: DeviceDep, hub: HubDep, session: SessionDep
) -> dict[str, Any]:
    """Declare an incident: every hospital of the device's region and its neighbours is
    alerted (a numbered ``incident`` event); the board is answered."""
    d = _device(caller)
    return incidents.declare(
        hub, session, device_id=d.id, team=d.fire_department, region=d.region, body=body
    )


@router.get("/v1/incidents/{incident_id}")
def board(incident_id: IncidentPath, caller: DeviceDep, session: SessionDep) -> dict[str, Any]:
    """The distribution board (what a device missed while its stream was down)."""
    row = incidents.get_incident(session, incident_id)
    incidents.check_device_sees(session, row, _device(caller).region)
    return incidents.board(session, incident_id)


@router.post("/v1/incidents/{incident_id}/patients")
def register(
    incident_id: IncidentPath,
    body: Registration,
    caller: DeviceDep,
    hub: HubDep,
    session: SessionDep,
) -> dict[str, Any]:
    d = _device(caller)
    return incidents.register(
        hub, session, device_id=d.id, region=d.region, incident_id=incident_id, body=body
    )


@router.post("/v1/incidents/{incident_id}/patients/{tag}/assignment")
def assign(
    incident_id: IncidentPath,
    tag: TagPath,
    body: Assignment,
    caller: DeviceDep,
    hub: HubDep,
    session: SessionDep,
) -> dict[str, Any]:
    d = _device(caller)
    return incidents.assign(
        hub, session, device_id=d.id, region=d.region, incident_id=incident_id, tag=tag, body=body
    )


@router.post("/v1/incidents/{incident_id}/close")
def close(
    incident_id: IncidentPath, caller: SignedDep, hub: HubDep, session: SessionDep
) -> dict[str, Any]:
    """Close (a device of the incident's regions, or an operator): the tally."""
    if caller.kind == "device":
        row = incidents.get_incident(session, incident_id)
        incidents.check_device_sees(session, row, _device(caller).region)
    elif caller.kind != "operator":
        raise NotAllowed("forbidden", "only devices and operators close incidents")
    return incidents.close(
        hub, session, actor=f"{caller.kind}:{caller.id}", incident_id=incident_id
    )


@router.get("/v1/incidents")
def list_incidents(caller: SignedDep, session: SessionDep) -> list[dict[str, Any]]:
    """Operators and technicians: every incident and its tally (no tags, no patient data)."""
    if caller.kind not in {"operator", "technician"}:
        raise NotAllowed("forbidden", "only staff list incidents")
    return incidents.incidents_of_operator(session)


@router.get("/v1/hospitals/me/incidents")
def hospital_incidents(caller: HospitalDep, session: SessionDep) -> list[dict[str, Any]]:
    """The incidents this hospital was alerted of: its capacity and its own tags only."""
    assert isinstance(caller.row, Hospital)
    return incidents.incidents_of_hospital(session, caller.id)


@router.post("/v1/hospitals/me/incidents/{incident_id}/capacity")
def capacity(
    incident_id: IncidentPath,
    body: Capacity,
    caller: HospitalDep,
    hub: HubDep,
    session: SessionDep,
) -> dict[str, Any]:
    """How many this hospital can take now per START category (赤/黄/緑)."""
    return incidents.answer_capacity(
        hub, session, hospital_id=caller.id, incident_id=incident_id, body=body
    )
