"""``GET /live``: the dashboard's Server-Sent Events (sse-starlette).

Each notice of the receiving service is one ``cases`` event whose data is a small
JSON object: ``{"kind": "case" | "answer" | "destination" | "closure" | "rejection"
| "purge", "case_id": ...}`` (the case id where there is one; never content). A
comment every ``PING_SECONDS`` keeps proxies from closing the stream; a session that
ended (expired, signed out elsewhere) gets ``signed-out`` and the stream ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from hospital.web.deps import SESSION_COOKIE, Auth, Service, Staff

__all__ = ["PING_SECONDS", "router"]

PING_SECONDS = 15

router = APIRouter()


def _event(
    *,
    event: str | None = None,
    data: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> ServerSentEvent:
    return ServerSentEvent(data, event=event, retry=retry, comment=comment, sep="\n")


@router.get("/live")
async def live(request: Request, who: Staff, service: Service, auth: Auth) -> EventSourceResponse:
    token = request.cookies.get(SESSION_COOKIE)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        q = service.news.subscribe()
        try:
            yield _event(retry=1000)
            while True:
                try:
                    notice = await asyncio.wait_for(q.get(), timeout=PING_SECONDS)
                except TimeoutError:
                    if auth.session(token) is None:
                        yield _event(event="signed-out", data="1")
                        return
                    yield _event(comment="ping")
                    continue
                yield _event(event="cases", data=notice)
        finally:
            service.news.unsubscribe(q)

    # The stream's own comment is the keep-alive: no second ping task.
    return EventSourceResponse(stream(), ping=0)
