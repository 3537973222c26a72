"""The in-process registry of open streams: who listens, and handing events to them."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hub_server.core.events.pending import PendingEvent

__all__ = ["DEFAULT_MAX_QUEUED", "EventBus", "Subscription", "TooManyStreams"]

_MAX_REMEMBERED_REVOCATIONS = 100_000

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
    #: Broadcast topics heard besides the recipient's own numbered events (a device's
    #: regions: ``EventBus.broadcast``), and their stream texts waiting to be written.
    topics: frozenset[str] = frozenset()
    broadcasts: deque[tuple[bytes, float]] = field(default_factory=deque)
    #: Set by ``EventBus.wake_all`` (the notification channel was lost): re-read the
    #: database. A wake-up with nothing queued and this unset is stale and costs nothing.
    reread: bool = False

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

    def offer_bytes(self, data: bytes, stamp: float = 0.0) -> None:
        """Queue a broadcast's stream bytes, encoded once for all its streams (event loop
        only); bounded like ``offer``."""
        if self.closed is not None:
            return
        if len(self.broadcasts) >= self.max_queued:
            self.close("behind")
            return
        self.broadcasts.append((data, stamp))
        self.ready.set()

    def take_broadcasts(self) -> list[tuple[bytes, float]]:
        """Every broadcast waiting, oldest first."""
        out = list(self.broadcasts)
        self.broadcasts.clear()
        return out

    def wake(self) -> None:
        """Make the stream re-read the database (event loop only)."""
        self.reread = True
        self.ready.set()

    def take(self) -> tuple[PendingEvent, float]:
        """The oldest queued event and when it was published."""
        return self.queue.popleft(), (self.stamps.popleft() if self.stamps else 0.0)

    def drop_queued(self) -> None:
        self.queue.clear()
        self.stamps.clear()
        self.broadcasts.clear()

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
        self._topics: dict[str, set[Subscription]] = {}
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
        topics: frozenset[str] = frozenset(),
    ) -> Iterator[Subscription]:
        """Register a stream (call from the event loop) for the duration of the block;
        ``TooManyStreams`` if ``recipient`` already has ``limit`` of them. ``topics``:
        the broadcasts it hears too (``broadcast``)."""
        self._loop = asyncio.get_running_loop()
        sub = Subscription(recipient, max_queued=max_queued, topics=topics)
        with self._lock:
            group = self._subs.setdefault(recipient, set())
            if limit is not None and len(group) >= limit:
                raise TooManyStreams(recipient)
            group.add(sub)
            for topic in topics:
                self._topics.setdefault(topic, set()).add(sub)
        try:
            yield sub
        finally:
            with self._lock:
                subs = self._subs.get(recipient)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[recipient]
                for topic in topics:
                    heard = self._topics.get(topic)
                    if heard is not None:
                        heard.discard(sub)
                        if not heard:
                            del self._topics[topic]

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
        self._call_on_loop(self._end, recipient)

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
        if events:
            self._call_on_loop(self._deliver, events, time.monotonic())

    def broadcast(self, topics: frozenset[str], text: str) -> None:
        """Hand a stream text to every local stream that hears one of ``topics`` (each
        once); callable from any thread. Nothing is stored: a stream that was not open
        catches up by itself (for availability: ``GET /v1/availability?after=V``)."""
        self._call_on_loop(self._broadcast, topics, text.encode(), time.monotonic())

    def close_topics(self, topics: frozenset[str], reason: str = "behind") -> None:
        """End the local streams that hear ``topics`` (a broadcast they cannot be given:
        they reconnect and catch up); callable from any thread."""
        self._call_on_loop(self._close_topics, topics, reason)

    def _call_on_loop(self, fn: Any, *args: Any) -> None:
        """``fn(*args)`` on the streams' loop: now when called on it, else soon (nothing
        when there is no loop yet or it is closing)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            with contextlib.suppress(RuntimeError):  # loop shutting down
                loop.call_soon_threadsafe(fn, *args)

    def _heard(self, topics: frozenset[str]) -> set[Subscription]:
        with self._lock:
            subs: set[Subscription] = set()
            for topic in topics:
                subs.update(self._topics.get(topic, ()))
        return subs

    def _broadcast(self, topics: frozenset[str], data: bytes, stamp: float) -> None:
        # Every stream of the process in this one loop callback: each gets the same bytes
        # and a wake-up; their writers run in the next iteration, one socket write each.
        for sub in self._heard(topics):
            sub.offer_bytes(data, stamp)

    def _close_topics(self, topics: frozenset[str], reason: str) -> None:
        for sub in self._heard(topics):
            sub.close(reason)

    def all_topics(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._topics)

    def topic_streams(self) -> int:
        """Open streams that hear some broadcast topic."""
        with self._lock:
            return len({s for group in self._topics.values() for s in group})

    def wake_all(self) -> None:
        """Make every stream re-read the database (after a lost notification channel)."""
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub.wake()

    def _deliver(self, events: list[PendingEvent], stamp: float = 0.0) -> None:
        with self._lock:
            targets = [(ev, list(self._subs.get(ev.recipient, ()))) for ev in events]
        for ev, subs in targets:
            for sub in subs:
                if ev.seq <= sub.highest_seen:
                    continue  # already had it (local publish and NOTIFY both arrive)
                sub.offer(ev, stamp)
