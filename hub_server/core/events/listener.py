"""``PgListener``: LISTEN on PostgreSQL and hand the other processes' events to the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from hub_server.core.events.bus import EventBus
from hub_server.core.events.notify import (
    AVAILABILITY_CHANNEL,
    CHANNEL,
    REVOKED_CHANNEL,
    parse_availability_notification,
    parse_notification,
)
from hub_server.core.events.pending import PendingEvent

__all__ = ["PgListener"]

#: Events read at most at once for the waiting notifications (``PgListener._publish_filled``).
_MAX_FILL = 1000

log = logging.getLogger("hub_server.events")


class PgListener:
    """LISTENs on PostgreSQL and wakes local streams; reconnects on failure."""

    def __init__(
        self,
        conninfo: str,
        bus: EventBus,
        *,
        connected: Any = None,
        fill: Callable[[list[PendingEvent]], list[PendingEvent]] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._bus = bus
        # ``fill`` (a thread): the data of events a notification could not carry, read once
        # for the process instead of once per stream (``crud.events_with_data``).
        self._fill = fill
        # Notifications waiting for (or behind one waiting for) its read, in the order they
        # came; one task reads and publishes them, so they reach the streams in order.
        self._waiting: deque[list[PendingEvent]] = deque()
        self._filler: asyncio.Task[None] | None = None
        # Its own thread: never waiting behind the case posts' request threads.
        self._fill_limiter = anyio.CapacityLimiter(1)
        self._connected = connected  # a gauge: 1 while listening
        if connected is not None:
            connected.set(0)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kyukyu-pg-listener")

    async def stop(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        import psycopg

        delay = 0.5
        lost_since: float | None = None
        reconnected = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    # What psycopg itself reads while it runs the LISTENs comes this way.
                    conn.add_notify_handler(lambda note: self._handle(note.channel, note.payload))
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {REVOKED_CHANNEL}")
                    await conn.execute(f"LISTEN {AVAILABILITY_CHANNEL}")
                    self.listening.set()
                    if self._connected is not None:
                        self._connected.set(1)
                    if lost_since is not None:
                        log.warning(
                            "event listener connected again after %.1f s",
                            time.monotonic() - lost_since,
                            extra={"listener": "connected"},
                        )
                        lost_since = None
                    delay = 0.5
                    # Anything published while we were not listening is in the DB.
                    self._bus.wake_all()
                    if reconnected:  # broadcasts missed: their streams reconnect, catch up
                        self._bus.close_topics(self._bus.all_topics())
                    reconnected = True
                    await self._receive(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: retry (one line per loss, not per try)
                self.listening.clear()
                if self._connected is not None:
                    self._connected.set(0)
                if lost_since is None:
                    lost_since = time.monotonic()
                    log.warning(
                        "event listener lost its connection (%s); reconnecting",
                        type(exc).__name__,
                        extra={"listener": "lost"},
                    )
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
        if channel == AVAILABILITY_CHANNEL:
            origin, topics, text = parse_availability_notification(payload)
            if origin == self._bus.origin:
                return
            if text:
                self._bus.broadcast(topics, text)
            else:  # too big to ride along: those streams reconnect and catch up
                self._bus.close_topics(topics)
            return
        origin, events = parse_notification(payload)
        if origin == self._bus.origin:  # our own were handed over directly
            return
        reading = self._filler is not None and not self._filler.done()
        if self._fill is not None and (
            reading or any(ev.data is None and self._bus.streams_of(ev.recipient) for ev in events)
        ):
            self._waiting.append(events)
            if not reading:
                self._filler = asyncio.get_running_loop().create_task(self._publish_filled())
            return
        self._bus.publish(events)

    async def _publish_filled(self) -> None:
        """Publish the waiting notifications in order, the data of those a local stream
        needs read for all of them at once (``_MAX_FILL`` events per read: under load, one
        read for many cases instead of a thread hop and a query each). Unread (each stream
        then re-reads the database, as after any gap) if reading fails."""
        assert self._fill is not None
        while self._waiting:
            events: list[PendingEvent] = []
            while self._waiting and len(events) < _MAX_FILL:
                events += self._waiting.popleft()
            wanted = [ev for ev in events if ev.data is None and self._bus.streams_of(ev.recipient)]
            if wanted:
                try:
                    read = await anyio.to_thread.run_sync(
                        self._fill, wanted, limiter=self._fill_limiter
                    )
                except Exception as exc:
                    log.warning(
                        "event data not read: %s", type(exc).__name__, extra={"listener": "fill"}
                    )
                else:
                    got = {(ev.recipient, ev.seq): ev for ev in read}
                    events = [got.get((ev.recipient, ev.seq), ev) for ev in events]
            self._bus.publish(events)
