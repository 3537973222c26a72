"""Server-Sent Event streams: a hospital's cases, a device's answers.

Thin routes: the caller, the position (``?after=N`` or ``Last-Event-ID: N``), then the
stream itself from ``hub_server.api.event_streams`` (format, catch-up, keep-alives,
revocation close are described there).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from hub_server.api.deps import DeviceDep, HospitalDep, HubDep, ascii_decimal
from hub_server.api.event_streams import open_stream
from hub_server.api.routes._common import ERRORS
from hub_server.core.errors import InvalidInput
from hub_server.core.state import HubState
from hub_server.crud import availability
from hub_server.models import Device

router = APIRouter(tags=["events"], responses=ERRORS)

_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
}


_MAX_SEQ = 2**62


def _start(last_event_id: str | None, after: int) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after
    seen = ascii_decimal(last_event_id.strip(), max_digits=19)
    if seen is None or seen > _MAX_SEQ:
        raise InvalidInput(
            "invalid_last_event_id",
            "Last-Event-ID must be an event number (ASCII digits, at most 2**62)",
            "再接続の位置(Last-Event-ID)が不正です。",
        )
    return max(after, seen)


AfterQuery = Annotated[int, Query(ge=0, le=2**62, description="last event number received")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)]


@router.get("/v1/hospitals/me/events", response_class=StreamingResponse, responses=_SSE)
async def hospital_events(
    caller: HospitalDep, hub: HubDep, after: AfterQuery = 0, last_event_id: LastEventId = None
) -> Response:
    """New cases (``event: case``, data has ``case_id`` and ``envelope``) and destinations."""
    return await open_stream(hub, f"hospital:{caller.id}", _start(last_event_id, after))


@router.get("/v1/devices/me/events", response_class=StreamingResponse, responses=_SSE)
async def device_events(
    caller: DeviceDep, hub: HubDep, after: AfterQuery = 0, last_event_id: LastEventId = None
) -> Response:
    """Answers of hospitals to this device's cases (``event: answer``), and the 応需状況
    of the hospitals of its regions (``event: availability``, not numbered)."""
    region = caller.row.region if isinstance(caller.row, Device) else None
    topics = await run_in_threadpool(_device_topics, hub, region)
    return await open_stream(hub, f"device:{caller.id}", _start(last_event_id, after), topics)


def _device_topics(hub: HubState, region: str | None) -> frozenset[str]:
    with hub.session() as session:
        return availability.device_topics(session, region)
