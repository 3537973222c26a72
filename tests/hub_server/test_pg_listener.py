"""The cross-process listener (``core.events.PgListener``) on a real PostgreSQL: another
process's case events and revocations reach this process's streams, its own are skipped,
and when its connection is killed it reconnects, makes every stream re-read the
database, and goes on receiving."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from hub_server.core.db import libpq_url
from hub_server.core.events import (
    CHANNEL,
    REVOKED_CHANNEL,
    EventBus,
    PendingEvent,
    PgListener,
    notification_payload,
)
from tests.hub_server._support import until

pytestmark = pytest.mark.anyio


def _notify(conninfo: str, channel: str, payload: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _case(seq: int) -> PendingEvent:
    data = {"type": "case", "case_id": f"c{seq}", "fire_department": "横浜市消防局"}
    return PendingEvent("hospital:h1", seq, "case", data)


async def test_events_and_revocations_cross_processes_and_survive_a_killed_connection(
    postgres_url: str,
) -> None:
    conninfo = libpq_url(postgres_url)
    bus = EventBus()
    listener = PgListener(conninfo, bus)
    with bus.subscribe("hospital:h1") as sub, bus.subscribe("device:d1") as device:
        listener.start()
        try:
            await asyncio.wait_for(listener.listening.wait(), 10)
            _notify(conninfo, CHANNEL, notification_payload([_case(1)], "other-process"))
            _notify(conninfo, CHANNEL, notification_payload([_case(9)], bus.origin))  # own
            _notify(conninfo, CHANNEL, notification_payload([_case(2)], "other-process"))
            await until(lambda: len(sub.queue) >= 2, "two events from another process")
            assert [ev.seq for ev in sub.queue] == [1, 2]
            assert sub.queue[0].data == _case(1).data
            sub.drop_queued()

            with psycopg.connect(conninfo, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
                ).fetchall()
            assert killed, "the listener's connection was found"
            await until(lambda: not listener.listening.is_set(), "the loss to be noticed")
            sub.ready.clear()
            await asyncio.wait_for(listener.listening.wait(), 15)
            assert sub.ready.is_set()  # woken: re-read what was missed from the database
            assert sub.reread

            _notify(conninfo, CHANNEL, notification_payload([_case(3)], "other-process"))
            await until(lambda: len(sub.queue) >= 1, "an event after the reconnection")
            assert [ev.seq for ev in sub.queue] == [3]

            _notify(conninfo, REVOKED_CHANNEL, "device:d1")
            await until(lambda: device.closed is not None, "the revocation")
            assert device.closed == "revoked"
            assert bus.was_revoked("device:d1")
            assert sub.closed is None
        finally:
            await listener.stop()


async def test_notifications_behind_one_being_read_wait_for_it_and_are_read_together(
    postgres_url: str,
) -> None:
    """A notification too big to carry its data is read (``fill``) before it is handed
    over; those that come meanwhile wait behind it, so the streams get every event in the
    order the database numbered them, and are read in one go, not one query each."""
    import threading
    from dataclasses import replace

    conninfo = libpq_url(postgres_url)
    release = threading.Event()
    reads: list[list[int]] = []

    def fill(events: list[PendingEvent]) -> list[PendingEvent]:
        reads.append([ev.seq for ev in events])
        assert release.wait(20)
        return [replace(ev, data={"filled": ev.seq}) for ev in events]

    bus = EventBus()
    listener = PgListener(conninfo, bus, fill=fill)
    by_number = [PendingEvent("hospital:h1", seq, "case", None) for seq in (1, 3, 4)]
    with bus.subscribe("hospital:h1") as sub:
        listener.start()
        try:
            await asyncio.wait_for(listener.listening.wait(), 10)
            _notify(conninfo, CHANNEL, notification_payload([by_number[0]], "other"))
            await until(lambda: reads == [[1]], "the first read to start")
            _notify(conninfo, CHANNEL, notification_payload([_case(2)], "other"))  # has its data
            for ev in by_number[1:]:
                _notify(conninfo, CHANNEL, notification_payload([ev], "other"))
            await until(lambda: len(listener._waiting) == 3, "three notifications waiting")
            assert not sub.queue  # nothing overtakes the one being read
            release.set()
            await until(lambda: len(sub.queue) >= 4, "all four events")
            assert [ev.seq for ev in sub.queue] == [1, 2, 3, 4]
            assert [ev.data for ev in sub.queue] == [
                {"filled": 1}, _case(2).data, {"filled": 3}, {"filled": 4},
            ]  # fmt: skip
            assert reads == [[1], [3, 4]]  # the two that waited: one read
        finally:
            release.set()
            await listener.stop()
