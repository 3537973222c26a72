"""The route class of ``POST /v1/cases`` (``api/routes/cases.py:post_case``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from hub_server.api.deps import admitted_device, ascii_decimal
from hub_server.schemas import CaseCreate

__all__ = ["CasePostRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class CasePostRoute(APIRoute):
    """The route of ``POST /v1/cases`` (``post_case``), answering a plain post without
    FastAPI's generic request handling.

    Every ambulance's case comes this way, and FastAPI's handling (dependency solving,
    parsing the body to Python objects, then validating them) cost about 0.25 ms of CPU
    per case here (docs/hub.md, "One path"). A plain post (an ``application/json`` body
    that validates, an ``Idempotency-Key`` of 1 to 200 characters, an outbox depth of
    ASCII digits up to 1,000,000 if any, an ``X-Kyukyu-Route`` of ``direct`` if any) goes
    straight to the route's own dependency
    (``admitted_device``) and endpoint (``post_case``); anything else is handled by
    FastAPI's handler of this same route, whose 422 ``invalid_request`` names the field,
    as it always did.
    """

    def get_route_handler(self) -> Handler:
        generic = super().get_route_handler()
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            headers = request.headers
            key = headers.get("idempotency-key", "")
            depth_text = headers.get("x-kyukyu-outbox-depth")
            depth = ascii_decimal(depth_text, max_digits=7) if depth_text is not None else None
            route = headers.get("x-kyukyu-route")
            if (
                not 1 <= len(key) <= 200
                or route not in (None, "direct")
                or not headers.get("content-type", "").startswith("application/json")
                or (depth_text is not None and (depth is None or depth > 1_000_000))
            ):
                return await generic(request)
            try:
                body = CaseCreate.model_validate_json(await request.body())
            except ValidationError:
                return await generic(request)
            async with contextlib.asynccontextmanager(admitted_device)(request) as caller:
                response: Response = await endpoint(request, body, caller, key, depth, route)
            return response

        return handler
