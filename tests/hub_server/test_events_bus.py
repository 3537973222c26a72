"""The notification payload round trip and the bus's de-duplication."""

from __future__ import annotations

import asyncio

import pytest

from hub_server.core.events import EventBus, PendingEvent, notification_payload, parse_notification

pytestmark = pytest.mark.anyio


def test_notification_payload_round_trip() -> None:
    events = [
        PendingEvent("hospital:a1", 3, "case", {"x": 1}),
        PendingEvent("device:d", 9, "", None),
    ]
    origin, got = parse_notification(notification_payload(events, "abc"))
    assert origin == "abc"
    assert [(e.recipient, e.seq, e.data) for e in got] == [
        ("hospital:a1", 3, None),
        ("device:d", 9, None),
    ]


async def test_bus_delivers_each_number_once_and_only_to_its_recipient() -> None:
    bus = EventBus()
    with bus.subscribe("hospital:a") as a, bus.subscribe("hospital:b") as b:
        a.highest_seen = 1
        bus.publish(
            [PendingEvent("hospital:a", 1, "case", {}), PendingEvent("hospital:a", 2, "case", {})]
        )
        assert await a.wait(1)
        assert [e.seq for e in a.queue] == [2]  # 1 was seen already
        assert not await b.wait(0.05)
        # From another thread (a route running in the thread pool).
        await asyncio.to_thread(bus.publish, [PendingEvent("hospital:b", 1, "case", {})])
        assert await b.wait(1)
        assert [e.seq for e in b.queue] == [1]
    assert bus.stream_count == 0
