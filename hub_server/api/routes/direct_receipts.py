"""Cases a hospital received straight from a device while the platform was out, handed in
by that hospital (the disaster route's reconciliation, docs/disaster.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub_server.api.deps import RelayingHospitalDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.state import HubState
from hub_server.schemas import CaseCreated, DirectReceipt
from hub_server.services.case_submission import relay_case

router = APIRouter(tags=["cases"], responses=ERRORS)


@router.post(
    "/v1/hospitals/me/direct-receipts",
    response_model=CaseCreated,
    status_code=201,
    responses={200: {"description": "the platform had this case already (one case)"}},
)
async def direct_receipt(
    request: Request, body: DirectReceipt, caller: RelayingHospitalDep
) -> Response:
    """A case a device delivered to this hospital directly while the platform was out,
    handed in by the hospital (the device may never come back): checked against the
    device's key, never opened, stored once (audited ``route`` direct, ``reported_by``)
    and streamed to the other recipients. 403 ``not_a_recipient`` / ``unknown_device``,
    422 for an envelope that is not that device's sealed case."""
    hub: HubState = request.app.state.hub
    done = await relay_case(
        hub, caller, case_id=body.case_id, device_id=body.device_id, envelope=body.envelope
    )
    if done.status == 201 and not done.replayed:
        hub.metrics.cases.inc()
    return Response(done.body, status_code=done.status, media_type="application/json")
