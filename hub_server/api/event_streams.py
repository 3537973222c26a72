"""Server-Sent Event streams: the writer of one recipient's stream (bounded inbox,
catch-up from the database, keep-alives, revocation close).

Each event carries ``id: N`` (numbered per recipient) and the same number as ``seq`` in
its one-line JSON data (``format_sse``: no line break of any kind, U+2028 & co. escaped).
Keep-alives are ``event: ping`` with empty data. A client that reconnects
with ``?after=N`` or ``Last-Event-ID: N`` first gets everything after N from the
database, then live events. A stream only ever carries its own recipient's events.
The routes (``api/routes/events.py``) parse the caller and the position and call
``open_stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hub_server import crud
from hub_server.core.errors import TooManyRequests
from hub_server.core.events import (
    KEEPALIVE,
    PendingEvent,
    Subscription,
    TooManyStreams,
    format_sse,
)
from hub_server.core.events.ordering import InOrder
from hub_server.core.state import HubState

__all__ = ["EventStreamResponse", "open_stream"]

T = TypeVar("T")

_BATCH = 200
log = logging.getLogger("hub_server.events")


def _load(hub: HubState, recipient: str, after: int) -> list[PendingEvent]:
    with hub.session() as session:
        return crud.events_after(session, recipient=recipient, after=after, limit=_BATCH)


_REVOKED = "event: revoked\ndata: {}\n\n"
_STREAM_THREADS = 2
_stream_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


async def _in_stream_thread(fn: Callable[..., T], *args: Any) -> T:
    """Streams read the database on threads of their own (two per process): thousands
    of streams (re)connecting at once then wait for each other, not the case posts'
    request threads."""
    loop = asyncio.get_running_loop()
    limiter = _stream_limiters.get(loop)
    if limiter is None:
        limiter = _stream_limiters[loop] = anyio.CapacityLimiter(_STREAM_THREADS)
    return await anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)


def _load_first(hub: HubState, recipient: str, after: int) -> list[PendingEvent] | None:
    """The first batch, or None if the recipient was revoked between its authentication
    and its subscription (a revocation broadcast in that gap reached no stream; the bus
    remembers it)."""
    if hub.bus.was_revoked(recipient):
        return None
    return _load(hub, recipient, after)


def _revoked_ids(hub: HubState) -> frozenset[str]:
    from sqlmodel import col, select

    from hub_server.models import Device, Hospital

    with hub.session() as session:
        devices = session.exec(select(Device.id).where(col(Device.revoked))).all()
        hospitals = session.exec(select(Hospital.id).where(col(Hospital.revoked))).all()
    return frozenset([f"device:{d}" for d in devices] + [f"hospital:{h}" for h in hospitals])


class _RevokedCache:
    """The revoked identities, read once per keep-alive interval per process (not once
    per stream: 10,000 streams would otherwise cost 10,000 queries per interval). A
    missing identity (deleted row) is found when the stream reconnects."""

    def __init__(self) -> None:
        self.at = -1e9
        self.ids: frozenset[str] = frozenset()
        self.lock = asyncio.Lock()

    async def get(self, hub: HubState) -> frozenset[str]:
        ttl = min(hub.settings.sse_keepalive_seconds, 5.0)
        if time.monotonic() - self.at < ttl:
            return self.ids
        async with self.lock:
            if time.monotonic() - self.at >= ttl:
                self.ids = await run_in_threadpool(_revoked_ids, hub)
                self.at = time.monotonic()
        return self.ids


def _closing_event(reason: str, last: int) -> str:
    if reason == "revoked":
        return _REVOKED  # a revoked identity hears nothing more
    # A comment (every SSE reader skips it), then the end of the stream: the client
    # reconnects with Last-Event-ID as after any drop, and nothing after ``last`` is lost.
    return f": closed: {reason}; reconnect with Last-Event-ID: {last}\n\n"


class EventStreamResponse(Response):
    """The SSE response of one recipient, written by its own task.

    A stream never holds anything up for the others: the bus hands it events without
    waiting (a bounded inbox, ``Settings.sse_max_queued``), and a reader that falls that
    far behind gets its stream closed (a last comment ``: closed: behind; reconnect with
    Last-Event-ID: N`` if the socket still takes bytes, else the connection is dropped:
    its stuck write is cancelled, so its buffers stay bounded); it reconnects with
    ``Last-Event-ID`` and reads what it missed from the database. Keep-alives cost one
    timer per stream; revocation is read once per interval per process.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        hub: HubState,
        recipient: str,
        after: int,
        topics: frozenset[str] = frozenset(),
        *,
        slot: int | None = None,
    ) -> None:
        super().__init__(status_code=200, media_type=self.media_type)
        self.hub = hub
        self.recipient = recipient
        self.after = after
        self.slot = slot  # the stream's lease slot (``open_stream``), given back at the end
        self.topics = topics  # broadcasts heard too (a device's regions: 応需状況)
        self._task: asyncio.Task[Any] | None = None  # the writer task (``_write``)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self._stream(receive, send)
        finally:
            leases, slot = self.hub.stream_leases, self.slot
            if leases is not None and slot is not None:
                self.slot = None
                # Not awaited: a stream cancelled at shutdown still gives its slot back
                # (and the process's lease connection ends with it anyway).
                asyncio.get_running_loop().run_in_executor(
                    None, leases.release, self.recipient, slot
                )

    async def _stream(self, receive: Any, send: Any) -> None:
        hub = self.hub
        metrics = hub.metrics
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        # Subscribe before the first read: no wake-up is lost.
        try:
            subscription = hub.bus.subscribe(
                self.recipient,
                limit=hub.settings.max_streams_per_identity,
                max_queued=hub.settings.sse_max_queued,
                topics=self.topics,
            )
            sub = subscription.__enter__()
        except TooManyStreams:  # opened concurrently past the limit the route checked
            await self._finish(send, "event: too_many_streams\ndata: {}\n\n")
            return
        with contextlib.ExitStack() as stack:
            stack.callback(subscription.__exit__, None, None, None)
            metrics.streams_open.inc()
            writer = asyncio.ensure_future(self._write(sub, send))
            listener = asyncio.ensure_future(_disconnected(receive))
            reason = "disconnected"
            try:
                await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
                if writer.done() and not writer.cancelled() and writer.exception() is None:
                    reason = sub.closed or "disconnected"
                elif writer.cancelled() and sub.closed is not None:
                    reason = sub.closed  # dropped: the socket took no more bytes
                    log.info("stream dropped (%s)", reason)
                elif writer.done() and not writer.cancelled():
                    exc = writer.exception()
                    assert exc is not None
                    # An outage is logged once by the monitor, not once per stream.
                    if self.hub.outage.report(exc) is None:
                        log.warning("stream failed (%s)", type(exc).__name__)
                    # End the response: the client reconnects from its last event.
                    await self._finish(send, "")
            except asyncio.CancelledError:
                reason = "shutdown"
                raise
            finally:
                for task in (writer, listener):
                    task.cancel()
                await asyncio.gather(writer, listener, return_exceptions=True)
                metrics.streams_open.dec()
                metrics.streams_closed.labels(reason=reason).inc()

    async def _send(self, sub: Subscription, send: Any, text: str | bytes) -> None:
        """Send a piece of the stream; a stream being closed sends nothing more but its
        last words (``_finish``). A send stuck on a full socket is cancelled by
        ``Subscription.close``."""
        if sub.closed is not None:
            return
        sub.blocked_writer = self._task
        try:
            body = text if isinstance(text, bytes) else text.encode()
            await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            sub.blocked_writer = None

    async def _finish(self, send: Any, text: str) -> None:
        message = {"type": "http.response.body", "body": text.encode(), "more_body": False}
        with contextlib.suppress(TimeoutError):  # nobody reads: the connection is dropped
            await asyncio.wait_for(send(message), self.hub.settings.sse_keepalive_seconds)

    async def _write(self, sub: Subscription, send: Any) -> None:
        self._task = asyncio.current_task()
        hub = self.hub
        push = hub.metrics.push_seconds
        order = InOrder(
            self.after, hold_s=hub.settings.sse_gap_hold_seconds, limit=hub.settings.sse_max_queued
        )
        sub.highest_seen = order.last
        await self._send(sub, send, "retry: 2000\n" + KEEPALIVE)
        need_db = True
        first = True
        while True:
            while need_db and sub.closed is None:
                if first:  # revoked between its authentication and its subscription?
                    loaded = await _in_stream_thread(_load_first, hub, self.recipient, order.last)
                    first = False
                    if loaded is None:
                        sub.close("revoked")
                        break
                    batch = loaded
                else:
                    batch = await _in_stream_thread(_load, hub, self.recipient, order.last)
                chunk = [format_sse(ev) for ev in batch if order.read(ev)]
                need_db = len(batch) == _BATCH
                if not need_db:
                    chunk += [format_sse(ev) for ev, _ in order.after_read()]
                sub.highest_seen = order.last
                if chunk:
                    await self._send(sub, send, b"".join(chunk))
            woken = True
            if sub.closed is None and not (sub.queue or sub.broadcasts or sub.reread):
                woken = await sub.wait(order.wait_s(hub.settings.sse_keepalive_seconds))
            # Whatever set ``ready`` is handled below: left set, it would wake the next
            # wait for nothing (a push offered while this writer awaited something else).
            sub.ready.clear()
            reread, sub.reread = sub.reread, False
            if sub.closed is None and not sub.queue and not sub.broadcasts:
                if order.gap_expired():  # the missing event did not come: read it
                    need_db = True
                    continue
                if not woken or reread:
                    # Keep-alive, or the listener reconnected: anything missed, a
                    # revocation included, is in the database.
                    cache = hub.stream_revocations
                    if cache is None:
                        cache = hub.stream_revocations = _RevokedCache()
                    if self.recipient in await cache.get(hub):
                        sub.close("revoked")
                if sub.closed is None:
                    if not woken:
                        await self._send(sub, send, KEEPALIVE)
                    need_db = reread
                    continue  # a stale wake-up costs nothing more
            if sub.closed is not None:
                await self._finish(send, _closing_event(sub.closed, order.last))
                return
            if sub.broadcasts:  # not numbered: written as they come, never re-read
                now = time.monotonic()
                pushed = sub.take_broadcasts()
                for _, stamp in pushed:
                    if stamp:
                        push.observe(now - stamp)
                await self._send(sub, send, b"".join(data for data, _ in pushed))
            need_db = reread
            while sub.queue:
                ev, stamp = sub.take()
                if not order.offer(ev, stamp):  # known only by number, or too far ahead
                    sub.drop_queued()
                    order.clear()
                    need_db = True
            now = time.monotonic()
            chunk = []
            for ev, stamp in order.ready():
                chunk.append(format_sse(ev))
                if stamp:
                    push.observe(now - stamp)
            sub.highest_seen = order.last
            if chunk:
                await self._send(sub, send, b"".join(chunk))
            need_db = need_db or order.gap_expired()


async def _disconnected(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _too_many(hub: HubState) -> TooManyRequests:
    return TooManyRequests(
        "too_many_streams",
        f"this caller already has {hub.settings.max_streams_per_identity} open streams",
        "同時に開ける受信接続の上限に達しています。",
        retry_after=hub.settings.sse_keepalive_seconds,
    )


async def open_stream(
    hub: HubState, recipient: str, after: int, topics: frozenset[str] = frozenset()
) -> EventStreamResponse:
    """The stream of ``recipient`` from event number ``after`` on (and the broadcasts of
    ``topics``); 429 if it already has
    ``Settings.max_streams_per_identity`` open: in this process, and on PostgreSQL in
    every process and host sharing the database (a slot of ``StreamLeases``, held until
    the stream ends)."""
    limit = hub.settings.max_streams_per_identity
    if hub.bus.streams_of(recipient) >= limit:
        raise _too_many(hub)
    leases = hub.stream_leases
    slot = None
    if leases is not None:
        slot = await _in_stream_thread(leases.acquire, recipient, limit)
        if slot is None:
            raise _too_many(hub)
    return EventStreamResponse(hub, recipient, after, topics, slot=slot)
