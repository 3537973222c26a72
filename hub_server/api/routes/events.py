"""Server-Sent Event streams: a hospital's cases, a device's answers.

Each event carries ``id: N`` (numbered per recipient) and the same number as ``seq`` in
its one-line JSON data (``format_sse``: no line break of any kind, U+2028 & co. escaped).
Keep-alives are ``event: ping`` with empty data. A client that reconnects
with ``?after=N`` or ``Last-Event-ID: N`` first gets everything after N from the
database, then live events. A stream only ever carries its own recipient's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from hub_server import crud
from hub_server.api.deps import DeviceDep, HospitalDep, HubDep, ascii_decimal
from hub_server.api.routes._common import ERRORS
from hub_server.core.errors import InvalidInput, TooManyRequests
from hub_server.core.events import KEEPALIVE, PendingEvent, TooManyStreams, format_sse
from hub_server.core.state import HubState

router = APIRouter(tags=["events"], responses=ERRORS)

_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
}
_BATCH = 200


def _revoked(hub: HubState, recipient: str) -> bool:
    from hub_server.models import Device, Hospital

    kind, _, ident = recipient.partition(":")
    with hub.session() as session:
        row = session.get(Device, ident) if kind == "device" else session.get(Hospital, ident)
        return row is None or row.revoked


def _load(hub: HubState, recipient: str, after: int) -> list[PendingEvent]:
    with hub.session() as session:
        return crud.events_after(session, recipient=recipient, after=after, limit=_BATCH)


_REVOKED = "event: revoked\ndata: {}\n\n"


def _load_first(hub: HubState, recipient: str, after: int) -> list[PendingEvent] | None:
    """The first batch, or None if the recipient was revoked between its authentication
    and its subscription (a revocation broadcast in that gap reached no stream)."""
    if _revoked(hub, recipient):
        return None
    return _load(hub, recipient, after)


async def _stream(hub: HubState, recipient: str, after: int) -> AsyncIterator[str]:
    try:
        subscription = hub.bus.subscribe(recipient, limit=hub.settings.max_streams_per_identity)
        sub = subscription.__enter__()  # subscribe first: no wake-up is lost
    except TooManyStreams:  # opened concurrently past the limit the route checked
        yield "event: too_many_streams\ndata: {}\n\n"
        return
    try:
        last = after
        sub.highest_seen = last
        yield "retry: 2000\n" + KEEPALIVE
        first = await run_in_threadpool(_load_first, hub, recipient, last)
        if first is None:
            yield _REVOKED
            return
        batch: list[PendingEvent] = first
        while True:
            for ev in batch:
                if sub.revoked:  # revoked while this batch was going out
                    yield _REVOKED
                    return
                if ev.seq > last:
                    last = sub.highest_seen = ev.seq
                    yield format_sse(ev)
            need_db = len(batch) == _BATCH
            batch = []
            if need_db:
                batch = await run_in_threadpool(_load, hub, recipient, last)
                continue
            woken = await sub.wait(hub.settings.sse_keepalive_seconds)
            if sub.revoked:  # EventBus.revoke: the revocation route or NOTIFY kyukyu_revoked
                yield _REVOKED
                return
            if not woken or not sub.queue:
                # Keep-alive, or woken without events (the listener reconnected: anything
                # missed, a revocation included, is in the database).
                if await run_in_threadpool(_revoked, hub, recipient):
                    yield _REVOKED  # a revoked device hears nothing more
                    return
                if not woken:
                    yield KEEPALIVE
                    continue
                batch = await run_in_threadpool(_load, hub, recipient, last)
                continue
            while sub.queue:
                if sub.revoked:
                    yield _REVOKED
                    return
                ev = sub.queue.popleft()
                if ev.seq <= last:
                    continue
                if ev.seq == last + 1 and ev.data is not None:
                    last = sub.highest_seen = ev.seq
                    yield format_sse(ev)
                else:  # a gap, or known only by number from another process
                    sub.queue.clear()
                    batch = await run_in_threadpool(_load, hub, recipient, last)
                    break
    finally:
        subscription.__exit__(None, None, None)


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


def _response(hub: HubState, recipient: str, after: int) -> StreamingResponse:
    if hub.bus.streams_of(recipient) >= hub.settings.max_streams_per_identity:
        raise TooManyRequests(
            "too_many_streams",
            f"this caller already has {hub.settings.max_streams_per_identity} open streams",
            "同時に開ける受信接続の上限に達しています。",
            retry_after=hub.settings.sse_keepalive_seconds,
        )
    return StreamingResponse(
        _stream(hub, recipient, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


AfterQuery = Annotated[int, Query(ge=0, le=2**62, description="last event number received")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)]


@router.get("/v1/hospitals/me/events", response_class=StreamingResponse, responses=_SSE)
async def hospital_events(
    caller: HospitalDep, hub: HubDep, after: AfterQuery = 0, last_event_id: LastEventId = None
) -> StreamingResponse:
    """New cases (``event: case``, data has ``case_id`` and ``envelope``) and destinations."""
    return _response(hub, f"hospital:{caller.id}", _start(last_event_id, after))


@router.get("/v1/devices/me/events", response_class=StreamingResponse, responses=_SSE)
async def device_events(
    caller: DeviceDep, hub: HubDep, after: AfterQuery = 0, last_event_id: LastEventId = None
) -> StreamingResponse:
    """Answers of hospitals to this device's cases (``event: answer``)."""
    return _response(hub, f"device:{caller.id}", _start(last_event_id, after))
