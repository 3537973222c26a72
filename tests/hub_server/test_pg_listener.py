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
