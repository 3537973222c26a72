"""One stream's numbered events, written strictly in order, without a database read for
every event that arrives a little early.

A recipient's events reach a hub process by two routes: those this process stored are
handed over at once (``EventBus.publish`` after the commit), those the other processes
stored come by notification, and when their data did not fit in it (every v2 case: a
16 KB envelope) only after the listener has read them (``PgListener``). So event 8, stored
here, may reach a stream before event 7, stored by the other process a moment earlier.
Reading the database at each such gap costs a query per stream; under load that was the
most expensive thing the streams did. ``InOrder`` holds the early events instead, for at
most ``hold_s``: the missing one almost always arrives meanwhile, and the held ones follow
it. The database stays the source of truth: a gap held longer, an event known only by its
number, or more events held than ``limit`` make the stream read it as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hub_server.core.events.pending import PendingEvent

__all__ = ["InOrder"]


class InOrder:
    """The position of one stream (``last``: the number of the last event written) and
    the live events held after a gap (for ``hold_s``: ``Settings.sse_gap_hold_seconds``;
    the missing event is one another process committed first, normally here within
    milliseconds). Event loop only."""

    def __init__(
        self,
        last: int,
        *,
        hold_s: float,
        limit: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.last = last
        self._hold_s = hold_s
        self._limit = limit
        self._clock = clock
        self._held: dict[int, tuple[PendingEvent, float]] = {}
        self._gap_since: float | None = None

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, ev: PendingEvent, stamp: float = 0.0) -> bool:
        """Take a live event (``stamp``: when it was published). False when only the
        database can say what comes next: the event is known only by its number, or too
        many are held already (the caller then drops what it holds and reads)."""
        if ev.seq <= self.last or ev.seq in self._held:
            return True  # had it already (a local hand-over and a notification both came)
        if ev.data is None or len(self._held) >= self._limit:
            return False
        self._held[ev.seq] = (ev, stamp)
        return True

    def ready(self) -> list[tuple[PendingEvent, float]]:
        """The held events that now follow the position without a gap, in order; the
        position moves past them. A gap left behind starts (or keeps) its clock."""
        out: list[tuple[PendingEvent, float]] = []
        while (nxt := self._held.pop(self.last + 1, None)) is not None:
            out.append(nxt)
            self.last += 1
        if not self._held:
            self._gap_since = None
        elif self._gap_since is None:
            self._gap_since = self._clock()
        return out

    def read(self, ev: PendingEvent) -> bool:
        """An event read from the database, in number order: True when it comes after
        the position (write it; the position moves to it)."""
        if ev.seq <= self.last:
            return False
        self.last = ev.seq
        self._held.pop(ev.seq, None)
        return True

    def after_read(self) -> list[tuple[PendingEvent, float]]:
        """After a read from the database: what was held and is now behind the position
        is dropped (the read gave it), and a gap still open starts its clock again; the
        held events that now follow (``ready``)."""
        for seq in [s for s in self._held if s <= self.last]:
            del self._held[seq]
        self._gap_since = None
        return self.ready()

    def clear(self) -> None:
        """Forget what is held (the stream reads the database instead)."""
        self._held.clear()
        self._gap_since = None

    def wait_s(self, idle_s: float) -> float:
        """How long the stream may wait for its next wake-up: ``idle_s`` (the keep-alive
        interval), or less while a gap is held."""
        if self._gap_since is None:
            return idle_s
        return max(0.0, min(idle_s, self._gap_since + self._hold_s - self._clock()))

    def gap_expired(self) -> bool:
        """A gap has been held for ``hold_s``: read the database."""
        return self._gap_since is not None and self._clock() - self._gap_since >= self._hold_s
