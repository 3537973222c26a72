"""The door both servers share: the body limit (413) and the rate-limit middleware (429).

The platform (``hub_server.core.limits``: who pays which bucket) and the hospital's direct
endpoint (``hospital.direct``) stand behind the same code; neither imports the other.

``BodyLimitMiddleware`` refuses a body over the limit with 413 ``body_too_large``
whether it announces its length (``Content-Length``) or not (chunked): the count is
kept while the body is read and the 413 goes out the moment the limit is passed,
whatever the application then makes of the interrupted read.

``RateLimitMiddleware`` asks a door (anything with ``wait(path, headers, client)``:
0.0 to go ahead, else the seconds to wait) once per request, unless a server already
let the request through its door (``DOOR_CHECKED`` in the scope).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errbase import error_json

__all__ = [
    "DOOR_CHECKED",
    "RATE_LIMITED",
    "BodyLimitMiddleware",
    "DoorCheck",
    "RateLimitMiddleware",
]


class DoorCheck(Protocol):
    def wait(self, path: str, headers: list[tuple[bytes, bytes]], client: str) -> float:
        """0.0: go ahead; else the seconds until this client may send again (429)."""
        ...


class _TooLarge(Exception):
    pass


async def _send_error(
    send: Send, status: int, body: bytes, *, close: bool, extra: list[Any] | None = None
) -> None:
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body = error_json(
            "body_too_large",
            f"the request body is larger than {max_bytes} bytes",
            "送信データが大きすぎます。",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope.get("headers", []):
            # The server checked the syntax (ASCII digits); too long to be a number we
            # accept is too large.
            if name == b"content-length":
                if len(value) > 18 or not value.isdigit() or int(value) > self.max_bytes:
                    await _send_error(send, 413, self.body, close=True)
                    return
                has_body = has_body or value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            # No Content-Length and no Transfer-Encoding: no body (RFC 9112, 6.3). Nothing
            # to count, and an event stream's every send skips a wrapper.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused, started
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if not started:
                        # Answer now: whatever the application does with the interrupted
                        # read (FastAPI turns it into a 400) is dropped below.
                        started = refused = True
                        await _send_error(send, 413, self.body, close=True)
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            pass
        except Exception:
            if not refused:
                raise


_SLOW_DOWN_JA = "リクエストが多すぎます。しばらくしてから再試行してください。"
RATE_LIMITED = ("rate_limited", "too many requests from this address; retry later", _SLOW_DOWN_JA)


#: Set in the scope by a server that already let the request through its ``Door``.
DOOR_CHECKED = "kyukyu.door_checked"


class RateLimitMiddleware:
    """429 ``rate_limited`` (with ``Retry-After``) for a client address that sends unsigned
    requests faster than its bucket allows (``Door``)."""

    def __init__(self, app: ASGIApp, *, door: DoorCheck) -> None:
        self.app = app
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(DOOR_CHECKED):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.door.wait(scope["path"], scope["headers"], client[0] if client else "")
        if wait > 0:
            body = error_json(*RATE_LIMITED)
            retry = str(max(1, math.ceil(wait))).encode()
            await _send_error(send, 429, body, close=False, extra=[(b"retry-after", retry)])
            return
        await self.app(scope, receive, send)
