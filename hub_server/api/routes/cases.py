"""Sealed cases: submit (idempotent), status, ack, answers, destination, closure (中止)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from hub_server.api.case_route import CasePostRoute
from hub_server.api.deps import AdmittedDeviceDep, DeviceDep, HospitalDep, HubDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.state import HubState
from hub_server.schemas import (
    AckPublic,
    AnswerCreate,
    AnswerPublic,
    CaseCreate,
    CaseCreated,
    CaseStatus,
    ClosureCreate,
    ClosurePublic,
    DestinationCreate,
    DestinationPublic,
)
from hub_server.services import case_progress
from hub_server.services.case_submission import submit_case

router = APIRouter(tags=["cases"], responses=ERRORS)

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="same key + same payload = same result; other payload = 422; in progress = 409",
    ),
]


OutboxDepth = Annotated[
    int | None,
    Header(
        alias="X-Kyukyu-Outbox-Depth",
        ge=0,
        le=1_000_000,
        description="unsent cases in the device's outbox, this one included (metrics only)",
    ),
]


CaseRoute = Annotated[
    Literal["direct"] | None,
    Header(
        alias="X-Kyukyu-Route",
        description="direct: the case reached its hospitals by the direct route while the "
        "platform was out, and is reconciled now (audited; docs/disaster.md)",
    ),
]


async def post_case(
    request: Request,
    body: CaseCreate,
    caller: AdmittedDeviceDep,  # first: a surge is refused before any work
    idempotency_key: IdempotencyKey,
    outbox_depth: OutboxDepth = None,
    route: CaseRoute = None,
) -> Response:
    """Store a sealed case and push a numbered event to every recipient hospital.

    One transaction: nonce, Idempotency-Key with its response, case, events and audit row.
    Refused with 503 ``overloaded`` and ``Retry-After`` when too many are being handled.
    """
    # The one way in for a case: admission, then the device (on the event loop when its
    # key is known), then ``submit_case`` (docs/hub.md, "One path"). One dependency and
    # the hub from the app's state: each dependency FastAPI solves costs CPU per case.
    hub: HubState = request.app.state.hub
    if outbox_depth is not None:
        hub.metrics.outbox_depth.observe(outbox_depth)
    done = await submit_case(
        hub, caller, body, idempotency_key=idempotency_key, route=route or "platform"
    )
    if done.status == 201 and not done.replayed:
        hub.metrics.cases.inc()
    headers = {"Idempotent-Replayed": "true"} if done.replayed else None
    # The body is JSON already (stored with the Idempotency-Key): sent as it is.
    return Response(
        done.body, status_code=done.status, headers=headers, media_type="application/json"
    )


router.add_api_route(
    "/v1/cases",
    post_case,
    methods=["POST"],
    route_class_override=CasePostRoute,
    response_model=CaseCreated,
    status_code=201,
    responses={503: {"description": "overloaded: send again after Retry-After seconds"}},
)


@router.get("/v1/cases/{case_id}", response_model=CaseStatus)
def case_status(case_id: str, caller: DeviceDep, session: SessionDep) -> CaseStatus:
    """Where the device's case stands (acks and answers per hospital)."""
    return case_progress.case_status(session, case_id=case_id, device_id=caller.id)


@router.post("/v1/cases/{case_id}/ack", response_model=AckPublic)
def ack_case(case_id: str, caller: HospitalDep, hub: HubDep, session: SessionDep) -> AckPublic:
    """The hospital has the case (once every recipient has it, it may be purged later);
    the device's stream gets ``received`` the first time."""
    return case_progress.acknowledge_case(hub, session, case_id=case_id, hospital_id=caller.id)


@router.post("/v1/cases/{case_id}/answers", response_model=AnswerPublic, status_code=201)
def answer_case(
    case_id: str, body: AnswerCreate, caller: HospitalDep, hub: HubDep, session: SessionDep
) -> AnswerPublic:
    """Accept or decline; the sending device sees it live on its stream."""
    return case_progress.answer_case(hub, session, caller, case_id=case_id, body=body)


@router.post("/v1/cases/{case_id}/destination", response_model=DestinationPublic)
def confirm_destination(
    case_id: str, body: DestinationCreate, caller: DeviceDep, hub: HubDep, session: SessionDep
) -> DestinationPublic:
    """The device confirms where the patient goes; every recipient is told.

    ``via``: ``answer`` (refused with 409 ``not_accepted`` unless that hospital answered
    accept) or ``phone`` (the crew confirmed the acceptance by phone).
    """
    return case_progress.confirm_destination(
        hub, session, caller, case_id=case_id, hospital_id=body.hospital_id, via=body.via
    )


@router.post("/v1/cases/{case_id}/closure", response_model=ClosurePublic, status_code=201)
def close_case(
    case_id: str, body: ClosureCreate, caller: DeviceDep, hub: HubDep, session: SessionDep
) -> ClosurePublic:
    """中止 / 不搬送: relay the sealed closure to every hospital the case was sent to
    (``closure`` event); 409 ``case_closed`` when it was closed already."""
    return case_progress.close_case(hub, session, caller, case_id=case_id, body=body)
