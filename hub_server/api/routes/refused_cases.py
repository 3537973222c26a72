"""Refused cases: a hospital reports the cases it could not take; operators list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from hub_server.api.deps import HospitalDep, OperatorDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.schemas import RefusedCaseCreate, RefusedCasePage, RefusedCasePublic
from hub_server.services import refused_cases

router = APIRouter(tags=["refused cases"], responses=ERRORS)


@router.post(
    "/v1/hospitals/me/refused-cases",
    response_model=RefusedCasePublic,
    status_code=201,
    responses={200: {"description": "reported before: the report kept then"}},
)
def report_refused_case(
    body: RefusedCaseCreate, caller: HospitalDep, session: SessionDep, response: Response
) -> RefusedCasePublic:
    """The hospital refused the case (or closure) of one of its events: the code only.

    404 ``unknown_event`` unless the event is a case or closure sent to this hospital;
    409 ``device_mismatch`` when the named device did not post it. Audited.
    """
    report, new = refused_cases.report_refused_case(
        session, hospital_id=caller.id, actor=caller.key_id, body=body
    )
    if not new:
        response.status_code = 200
    return report


@router.get("/v1/refused-case-reports", response_model=RefusedCasePage)
def list_refused_case_reports(
    caller: OperatorDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    hospital_id: Annotated[
        str | None, Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    ] = None,
) -> RefusedCasePage:
    """Refused-case reports, oldest first, after report id ``after`` (operators only)."""
    return refused_cases.list_reports(session, after=after, limit=limit, hospital_id=hospital_id)
