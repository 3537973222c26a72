"""A synchronous httpx transport onto ``httpx.ASGITransport`` (the hub in process, no socket).

``PlatformClient`` is synchronous (it runs in the UI's worker threads); httpx's
ASGI transport is async only. This bridge runs the ASGI app on an event loop in
a background thread. ASGITransport buffers whole responses, so it is for plain
request/response calls, not for SSE streams (those are tested under uvicorn).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx


class SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, httpx.Headers, bytes]:
            req = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            resp = await self._inner.handle_async_request(req)
            content = await resp.aread()
            return resp.status_code, resp.headers, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result(30)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Called by every client that closes; the bridge is shared, so it stays up."""

    def shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
