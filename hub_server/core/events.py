"""Live fan-out of numbered events to SSE streams.

The database is the source of truth (the ``events`` table, numbered per recipient);
the bus only wakes streams up. In one process a publish hands the rendered event to
the subscribers directly (no query); across processes on PostgreSQL each
transaction that appends events also sends ``NOTIFY kyukyu_events`` (JSON: origin,
recipients and numbers, and the event data when it fits in a notification), and every
other process's ``PgListener`` hands them to its local streams. A stream that sees a gap,
or an event without its data, reads from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHANNEL",
    "DEFAULT_MAX_QUEUED",
    "KEEPALIVE",
    "REVOKED_CHANNEL",
    "EventBus",
    "PendingEvent",
    "PgListener",
    "Subscription",
    "TooManyStreams",
    "format_sse",
    "sse_json",
]

CHANNEL = "kyukyu_events"
#: ``NOTIFY kyukyu_revoked, '<recipient>'``: every process closes that identity's streams.
REVOKED_CHANNEL = "kyukyu_revoked"
log = logging.getLogger("hub_server.events")
_MAX_REMEMBERED_REVOCATIONS = 100_000


@dataclass(frozen=True)
class PendingEvent:
    recipient: str
    seq: int
    kind: str
    data: dict[str, Any] | None  # None: known only by number (remote); read from the DB


# Code points that some line splitters (``str.splitlines``, JavaScript's line terminators)
# take as line breaks although JSON allows them raw in strings. The others that
# ``str.splitlines`` knows (CR, LF, VT, FF, FS, GS, RS) are below U+0020, which JSON always
# escapes.
_RAW_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})

#: An event that carries nothing: the stream's keep-alive (also its first event).
KEEPALIVE = "event: ping\ndata:\n\n"


def sse_json(data: object) -> str:
    """Compact JSON with no line break of any kind in it (UTF-8 text stays raw otherwise)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # Searched first: ``str.translate`` walks a non-ASCII text code point by code point in
    # Python's slow path (about 0.3 ms for a case event with a Japanese fire department).
    if "\u0085" in text or "\u2028" in text or "\u2029" in text:
        text = text.translate(_RAW_BREAKS)
    if any(c in text for c in "\r\n"):  # json.dumps never emits them; a cheap guard
        raise ValueError("line break in event JSON")
    return text


def format_sse(ev: PendingEvent) -> str:
    """One WHATWG event-stream event: ``id`` is the number, repeated inside the data as
    ``seq`` (receivers take a position only when the two agree), and the data is one line."""
    if ev.data is None:
        raise ValueError("an event is written with its data")
    if "seq" in ev.data:
        body = sse_json(dict(ev.data, seq=ev.seq))
    else:  # the same JSON as above: ``seq`` goes last
        shared = _shared_json(ev.data)
        body = f'{shared[:-1]}{"," if len(shared) > 2 else ""}"seq":{ev.seq}}}'
    return f"id: {ev.seq}\nevent: {ev.kind}\ndata: {body}\n\n"


# The recipients of a case share one data dict (with its 4 KB envelope): it is encoded
# once, not once per stream. Keyed by identity; the entry keeps the dict alive, so an id
# is never reused while cached. Event loop only; the data of an event is never mutated.
_ENCODED: dict[int, tuple[dict[str, Any], str]] = {}


def _shared_json(data: dict[str, Any]) -> str:
    hit = _ENCODED.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    text = sse_json(data)
    _keep_text(data, text)
    return text


def _keep_text(data: dict[str, Any], text: str) -> None:
    if len(_ENCODED) >= 256:
        _ENCODED.clear()
    _ENCODED[id(data)] = (data, text)


#: Events a stream may have waiting before it counts as fallen behind and is closed.
DEFAULT_MAX_QUEUED = 256


@dataclass(eq=False)  # identity semantics: subscriptions live in sets
class Subscription:
    """One open stream's inbox: bounded. When a stream's reader falls so far behind that
    ``max_queued`` events wait, the stream is closed (``closed == "behind"``) instead of
    buffering more: the client reconnects with ``Last-Event-ID`` and catches up from the
    database, and nobody else waits for it."""

    recipient: str
    max_queued: int = DEFAULT_MAX_QUEUED
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    queue: deque[PendingEvent] = field(default_factory=deque)
    #: When each queued event was published (``time.monotonic()``), in step with ``queue``.
    stamps: deque[float] = field(default_factory=deque)
    highest_seen: int = 0
    revoked: bool = False  # set by ``EventBus.revoke``: the stream ends at once
    closed: str | None = None  # why the stream must end ("behind", "revoked")
    #: The task writing this stream, while it is blocked handing bytes to the socket.
    blocked_writer: asyncio.Task[Any] | None = None

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up; False on timeout (the queue may still hold events).

        A timer handle, not ``asyncio.wait_for``: no extra task per idle stream (Python
        3.11's ``wait_for`` wraps the wait in one), which 10,000 streams would each hold.
        """
        if not self.ready.is_set():
            timed_out = False

            def fire() -> None:
                nonlocal timed_out
                timed_out = True
                self.ready.set()

            timer = asyncio.get_running_loop().call_later(timeout, fire)
            try:
                await self.ready.wait()
            finally:
                timer.cancel()
            if timed_out:
                self.ready.clear()
                return False
        self.ready.clear()
        return True

    def offer(self, ev: PendingEvent, stamp: float = 0.0) -> None:
        """Queue an event (event loop only); past ``max_queued`` the stream is closed."""
        if self.closed is not None:
            return
        if len(self.queue) >= self.max_queued:
            self.close("behind")
            return
        self.queue.append(ev)
        self.stamps.append(stamp)
        self.ready.set()

    def take(self) -> tuple[PendingEvent, float]:
        """The oldest queued event and when it was published."""
        return self.queue.popleft(), (self.stamps.popleft() if self.stamps else 0.0)

    def drop_queued(self) -> None:
        self.queue.clear()
        self.stamps.clear()

    def close(self, reason: str) -> None:
        """End the stream (event loop only): the writer says why if it can, and a writer
        stuck on a socket nobody reads is cancelled (the connection is then dropped)."""
        if reason == "revoked":
            self.revoked = True
        if self.closed is not None:
            return
        self.closed = reason
        self.drop_queued()
        self.ready.set()
        if self.blocked_writer is not None:
            self.blocked_writer.cancel()


class TooManyStreams(Exception):
    """The recipient already has as many open streams as it may."""


class EventBus:
    """In-process registry of live streams; thread-safe ``publish`` and ``revoke``."""

    def __init__(self) -> None:
        # Tags this bus's NOTIFYs: its own listener skips them (the local hand-over is
        # faster and carries the data; re-reading them from the database would cost a query
        # per stream).
        self.origin = secrets.token_hex(8)
        self._subs: dict[str, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        #: Every recipient this process heard revoked (insertion order; bounded).
        self._revoked: dict[str, None] = {}

    @contextlib.contextmanager
    def subscribe(
        self,
        recipient: str,
        *,
        limit: int | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> Iterator[Subscription]:
        """Register a stream (call from the event loop) for the duration of the block;
        ``TooManyStreams`` if ``recipient`` already has ``limit`` of them."""
        self._loop = asyncio.get_running_loop()
        sub = Subscription(recipient, max_queued=max_queued)
        with self._lock:
            group = self._subs.setdefault(recipient, set())
            if limit is not None and len(group) >= limit:
                raise TooManyStreams(recipient)
            group.add(sub)
        try:
            yield sub
        finally:
            with self._lock:
                subs = self._subs.get(recipient)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[recipient]

    @property
    def stream_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def streams_of(self, recipient: str) -> int:
        with self._lock:
            return len(self._subs.get(recipient, ()))

    def recipients(self) -> list[str]:
        with self._lock:
            return list(self._subs)

    def revoke(self, recipient: str) -> None:
        """End every local stream of ``recipient`` (callable from any thread), and
        remember it: a stream subscribed after this call sees it (``was_revoked``)."""
        with self._lock:
            self._revoked[recipient] = None
            if len(self._revoked) > _MAX_REMEMBERED_REVOCATIONS:
                del self._revoked[next(iter(self._revoked))]
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._end(recipient)
        else:
            with contextlib.suppress(RuntimeError):  # loop shutting down
                loop.call_soon_threadsafe(self._end, recipient)

    def was_revoked(self, recipient: str) -> bool:
        """Whether this process heard ``recipient`` revoked (locally, or by the other
        processes' broadcast): what a new stream checks right after subscribing, instead
        of a query, so that a broadcast in the gap between its authentication and its
        subscription is not missed."""
        with self._lock:
            return recipient in self._revoked

    def _end(self, recipient: str) -> None:
        with self._lock:
            subs = list(self._subs.get(recipient, ()))
        for sub in subs:
            sub.close("revoked")

    def publish(self, events: list[PendingEvent]) -> None:
        """Hand events to local streams; callable from any thread."""
        loop = self._loop
        if loop is None or not events or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        stamp = time.monotonic()
        if running is loop:
            self._deliver(events, stamp)
        else:
            with contextlib.suppress(RuntimeError):  # loop shutting down
                loop.call_soon_threadsafe(self._deliver, events, stamp)

    def wake_all(self) -> None:
        """Make every stream re-read the database (after a lost notification channel)."""
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub.ready.set()

    def _deliver(self, events: list[PendingEvent], stamp: float = 0.0) -> None:
        with self._lock:
            targets = [(ev, list(self._subs.get(ev.recipient, ()))) for ev in events]
        for ev, subs in targets:
            for sub in subs:
                if ev.seq <= sub.highest_seen:
                    continue  # already had it (local publish and NOTIFY both arrive)
                sub.offer(ev, stamp)


_MAX_NOTIFY = 7900  # PostgreSQL's payload limit is 8000 bytes


def notification_payload(events: list[PendingEvent], origin: str = "") -> str:
    """JSON ``{"o": origin, "e": [[recipient, seq, kind], ...], "d": data}``.

    The event data rides along when it is the same for every event (a case and its
    recipients) and fits; otherwise the other processes read the rows.
    """
    items = [[ev.recipient, ev.seq, ev.kind] for ev in events]
    first = events[0].data if events else None
    if first is not None and all(ev.data == first for ev in events):
        text = json.dumps({"o": origin, "e": items, "d": first}, separators=(",", ":"))
        if len(text.encode()) <= _MAX_NOTIFY:
            return text
    return json.dumps({"o": origin, "e": items}, separators=(",", ":"))


def notification_prefix_suffix(
    data: dict[str, Any] | None, origin: str, count: int
) -> tuple[str, str]:
    """The text around the ``[[recipient, seq, kind], ...]`` array of a notification that
    the database completes (the numbers are known only there); the same JSON as
    ``notification_payload``, the data included when it fits whatever the numbers."""
    pre = json.dumps({"o": origin}, separators=(",", ":"))[:-1] + ',"e":'
    if data is not None:
        suffix = ',"d":' + json.dumps(data, separators=(",", ":")) + "}"
        # An item is at most ~85 bytes: ["hospital:<40>", <19 digits>, "case"],
        if len(pre.encode()) + len(suffix.encode()) + 100 * count <= _MAX_NOTIFY:
            return pre, suffix
    return pre, "}"


def parse_notification(payload: str) -> tuple[str, list[PendingEvent]]:
    """The inverse of ``notification_payload``: (origin, events; data None when left out).

    Call it on the event loop: the data's JSON text in the notification is kept as the
    text its streams write (``format_sse``), so it is not encoded again in every process.
    """
    try:
        doc = json.loads(payload)
        data = doc.get("d")
        events = [PendingEvent(str(r), int(q), str(k), data) for r, q, k in doc["e"]]
        origin = str(doc.get("o", ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", []
    if isinstance(data, dict) and data:
        _remember_text(data, payload)
    return origin, events


def _remember_text(data: dict[str, Any], payload: str) -> None:
    # The members before "d" are the origin (hex) and the [recipient, seq, kind] items:
    # their strings hold no raw quote, so the first ',"d":' is the top-level key's. The
    # notification's JSON is ASCII-escaped: no line break of any kind can be in it.
    at = payload.find(',"d":')
    text = payload[at + 5 : -1] if at > 0 and payload.endswith("}") else ""
    if text.isascii() and text.startswith("{") and text.endswith("}"):
        _keep_text(data, text)


class PgListener:
    """LISTENs on PostgreSQL and wakes local streams; reconnects on failure."""

    def __init__(self, conninfo: str, bus: EventBus) -> None:
        self._conninfo = conninfo
        self._bus = bus
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kyukyu-pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    # What psycopg itself reads while it runs the LISTENs comes this way.
                    conn.add_notify_handler(lambda note: self._handle(note.channel, note.payload))
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {REVOKED_CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    # Anything published while we were not listening is in the DB.
                    self._bus.wake_all()
                    await self._receive(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: retry
                self.listening.clear()
                log.warning("event listener lost its connection (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _receive(self, conn: Any) -> None:
        """Hand notifications to the bus until the connection fails (then raise).

        libpq's own calls on a reader callback (``consume_input``, ``notifies``): every
        process gets every other process's case notifications, and psycopg's
        ``notifies()`` generator costs about 27 us per notification here (a lock and a
        wait per read), this about 11 us, the JSON included.
        """
        loop = asyncio.get_running_loop()
        pgconn = conn.pgconn
        encoding = conn.info.encoding
        lost: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                pgconn.consume_input()
                while (note := pgconn.notifies()) is not None:
                    self._handle(note.relname.decode(encoding), note.extra.decode(encoding))
            except Exception as exc:  # the connection failed: reconnect
                if not lost.done():
                    lost.set_exception(exc)

        fd = pgconn.socket
        loop.add_reader(fd, readable)
        try:
            readable()  # anything that arrived with the LISTEN answers
            await lost
        finally:
            loop.remove_reader(fd)

    def _handle(self, channel: str, payload: str) -> None:
        if channel == REVOKED_CHANNEL:
            self._bus.revoke(payload)
            return
        origin, events = parse_notification(payload)
        if origin != self._bus.origin:  # our own were handed over directly
            self._bus.publish(events)
