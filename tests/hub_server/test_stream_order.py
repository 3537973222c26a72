"""A stream writes its events strictly in number order, holding an early event for the
missing one instead of reading the database at every gap (``core.events.ordering``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_server.api import event_streams
from hub_server.core.config import Settings
from hub_server.core.events import PendingEvent
from hub_server.core.events.ordering import InOrder
from hub_server.core.security import HubKey
from hub_server.main import build_state, create_app
from kyukyu.testing import serve_in_thread
from tests.hub_server._support import Hub, make_operator, sse_events

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ev(seq: int, data: dict[str, Any] | None = None) -> PendingEvent:
    return PendingEvent("hospital:h", seq, "case", {"n": seq} if data is None else data)


def test_an_early_event_waits_for_the_missing_one_then_both_follow_in_order() -> None:
    clock = Clock()
    order = InOrder(4, hold_s=1.0, limit=8, clock=clock)
    assert order.offer(ev(6))
    assert order.ready() == []  # 5 is missing: 6 is held
    assert order.held == 1
    assert order.wait_s(15.0) == 1.0  # the stream wakes when the gap has been held long enough
    clock.now += 0.4
    assert order.wait_s(15.0) == pytest.approx(0.6)
    assert not order.gap_expired()
    assert order.offer(ev(5))
    assert [e.seq for e, _ in order.ready()] == [5, 6]
    assert order.last == 6
    assert order.wait_s(15.0) == 15.0  # no gap: the keep-alive interval again


def test_a_gap_held_too_long_asks_for_the_database_and_the_read_closes_it() -> None:
    clock = Clock()
    order = InOrder(0, hold_s=1.0, limit=8, clock=clock)
    order.offer(ev(3))
    order.ready()
    clock.now += 1.0
    assert order.gap_expired()
    # The database gives 1..3; 3 was held and is not written twice.
    written = [e.seq for e in (ev(1), ev(2), ev(3)) if order.read(e)]
    assert written == [1, 2, 3]
    assert order.after_read() == []
    assert order.held == 0
    assert not order.gap_expired()


def test_an_event_known_only_by_number_or_too_many_held_needs_the_database() -> None:
    order = InOrder(0, hold_s=1.0, limit=2, clock=Clock())
    assert not order.offer(PendingEvent("hospital:h", 1, "case", None))
    assert order.offer(ev(3))
    assert order.offer(ev(4))
    assert not order.offer(ev(5))  # past the limit
    assert order.offer(ev(4))  # one already held is no news
    assert order.offer(ev(0))  # one already written is no news


@given(st.permutations(list(range(1, 13))))
def test_any_arrival_order_is_written_in_number_order(arrival: list[int]) -> None:
    order = InOrder(0, hold_s=1.0, limit=64, clock=Clock())
    written: list[int] = []
    for seq in arrival:
        assert order.offer(ev(seq))
        written += [e.seq for e, _ in order.ready()]
    assert written == list(range(1, 13))
    assert order.held == 0


@pytest.fixture
def hub_with_hold(tmp_path: Path, roots_dir: Path, request: Any) -> Iterator[tuple[str, Any]]:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'hub.db'}",
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
        sse_keepalive_seconds=60,
        sse_gap_hold_seconds=request.param,
    )
    state = build_state(settings, hub_key=HubKey.generate())
    with serve_in_thread(create_app(settings, state=state)) as url:
        yield url, state
    state.engine.dispose()


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = event_streams._load

    def counted(hub: Any, recipient: str, after: int) -> list[PendingEvent]:
        reads.append(after)
        return real(hub, recipient, after)

    monkeypatch.setattr(event_streams, "_load", counted)
    return reads


def _swap_first_two(state: Any, monkeypatch: pytest.MonkeyPatch, *, lose_first: bool) -> None:
    """The bus hands the first case over only after the second (as when the first was
    stored by another process and is still being read there), or never."""
    real = state.bus.publish
    held: list[list[PendingEvent]] = []

    def publish(events: list[PendingEvent]) -> None:
        if not any(e.kind == "case" for e in events):
            real(events)
        elif not held:
            held.append(events)
        else:
            real(events)
            if not lose_first:
                real(held[0])

    monkeypatch.setattr(state.bus, "publish", publish)


async def _two_cases(
    served: tuple[str, Any], monkeypatch: pytest.MonkeyPatch, *, lose_first: bool
) -> tuple[list[tuple[int, str]], list[int]]:
    """Two cases to one hospital, the first handed over after the second (or never):
    what its stream wrote (number, case id), and the positions it read the database at."""
    url, state = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        hub = Hub(client=client, state=state, operator=make_operator(state))
        device = await hub.enroll_device()
        hid, hospital = await hub.register_hospital()
        reads = _count_reads(monkeypatch)
        _swap_first_two(state, monkeypatch, lose_first=lose_first)
        path = "/v1/hospitals/me/events"
        async with client.stream("GET", path, headers=hospital.headers("GET", path)) as r:
            assert r.status_code == 200
            while not reads:  # the stream's first read (nothing yet) is done
                await asyncio.sleep(0.01)
            for case_id in ("case-first", "case-second"):
                assert (await hub.post_case(device, [hid], case_id=case_id)).status_code == 201
            got = await asyncio.wait_for(sse_events(r, 2), 20)
    return [(i, d["case_id"]) for i, _, d in got], reads


@pytest.mark.parametrize("hub_with_hold", [60.0], indirect=True)
async def test_a_case_that_overtakes_another_waits_for_it_without_a_database_read(
    hub_with_hold: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    got, reads = await _two_cases(hub_with_hold, monkeypatch, lose_first=False)
    assert got == [(1, "case-first"), (2, "case-second")]
    assert reads == [0]  # only the stream's opening read


@pytest.mark.parametrize("hub_with_hold", [0.05], indirect=True)
async def test_a_missing_event_that_never_comes_is_read_from_the_database(
    hub_with_hold: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    got, reads = await _two_cases(hub_with_hold, monkeypatch, lose_first=True)
    assert got == [(1, "case-first"), (2, "case-second")]
    assert reads[:2] == [0, 0]  # the opening read, then the gap read from the start
