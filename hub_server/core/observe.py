"""What every HTTP request of the hub leaves behind: an access-log line, a count by route
template and status, and an honest answer when it failed.

``ObservedMiddleware`` is the app's outermost middleware. For each request it

- counts the response (``kyukyu_hub_responses_total{method, route, status}``; ``route`` is
  the route's template, ``/v1/cases/{case_id}/ack``, never a path with its ids);
- writes one access-log line (logger ``hub_server.access``): method, route template,
  status, duration and the authenticated identity id (``device:<id>``, ``hospital:<id>``,
  ``operator:<id>``, set by ``api.deps`` once a signature verified), never a body, a query
  or a header;
- answers an exception nobody handled: an outage (``core.outage``: the database down, its
  disk full, its pool exhausted) with 503, ``Retry-After`` and its code, anything else
  with 500 ``internal_error`` and one scrubbed traceback in the log (``door.logs``); both
  with the one error body. An event stream that fails once started is ended cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub_server.core.errors import error_json

__all__ = ["IDENTITY", "ObservedMiddleware", "route_template"]

access_log = logging.getLogger("hub_server.access")
log = logging.getLogger("hub_server.errors")

#: Where ``api.deps`` puts the verified caller's key id in the request's scope.
IDENTITY = "kyukyu.identity"

_INTERNAL = error_json(
    "internal_error",
    "the platform failed to answer this request; it was logged",
    "プラットフォームで予期しないエラーが発生しました。時間をおいて再試行してください。",
)


def route_template(app: Any, scope: Scope) -> str:
    """The template of the route that took (or would take) this request, or ``-``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    from starlette.routing import Match

    for candidate in getattr(app, "routes", ()):
        matches = getattr(candidate, "matches", None)
        if matches is None:
            continue
        match, _ = matches(scope)
        if match is not Match.NONE:
            found = getattr(candidate, "path", None)
            if isinstance(found, str):
                return found
    return "-"


class ObservedMiddleware:
    def __init__(self, app: ASGIApp, *, hub: Any, fastapi_app: Any) -> None:
        self.app = app
        self.hub = hub
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        started = False

        async def observed_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception as exc:
            outage = self.hub.outage.report(exc)
            if started:
                # A stream cut short: end it, the client reconnects from its position.
                if outage is None:
                    log.error("a started response failed", exc_info=exc)
                with contextlib.suppress(OSError, RuntimeError):  # the connection is gone
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif outage is not None:
                status = 503
                retry = str(outage.retry_after).encode()
                await _answer(send, 503, outage.to_json(), [(b"retry-after", retry)])
            else:
                status = 500
                log.error("unhandled error answered with 500 internal_error", exc_info=exc)
                await _answer(send, 500, _INTERNAL, [])
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope.get("method", "-")
        route = route_template(self.fastapi_app, scope)
        self.hub.metrics.responses.labels(method=method, route=route, status=str(status)).inc()
        if 200 <= status < 300 and method == "POST":
            self.hub.outage.write_succeeded()
        access_log.info(
            "%s %s %d %.1f ms", method, route, status, seconds * 1000.0,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000.0, 2),
                "identity": scope.get(IDENTITY),
            },
        )  # fmt: skip


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
