"""The device's one answer path (``sync.sender.follow_answers``): what it keeps, what it skips."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sync.client import DeviceEvent
from sync.outbox import Outbox
from sync.sender import follow_answers
from tests.sync.test_outbox import sealed


class Stream:
    """The answer stream as the platform client hands it out (already parsed events)."""

    def __init__(self, events: list[DeviceEvent], keepalives: int = 1) -> None:
        self.events = events
        self.keepalives = keepalives
        self.after: list[int] = []

    def device_events(
        self,
        after: int = 0,
        stop: threading.Event | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> Iterator[DeviceEvent]:
        self.after.append(after)
        for _ in range(self.keepalives):
            if on_keepalive is not None:
                on_keepalive()
        yield from (e for e in self.events if e.seq > after)


def test_a_malformed_event_is_skipped_and_the_answers_after_it_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.enqueue(sealed("c1"))
    events = [
        DeviceEvent(1, "received", {"case_id": "c1", "hospital_id": "h0"}),
        DeviceEvent(2, "answer", {"case_id": "c1", "answer": "accept"}),  # no hospital
        DeviceEvent(3, "answer", {"case_id": "c1", "hospital_id": "h1", "answer": "maybe"}),
        DeviceEvent(4, "hello", {}),  # a kind this device does not know: only the cursor
        DeviceEvent(
            5,
            "answer",
            {"case_id": "c1", "hospital_id": "h0", "answer": "decline", "reason": "満床"},
        ),
    ]
    news: list[int] = []
    alive: list[int] = []
    stream = Stream(events)
    with caplog.at_level(logging.WARNING, logger="sync.sender"):
        applied = follow_answers(
            stream,
            ob.answers,
            on_news=lambda: news.append(ob.answers.answers_after),
            on_alive=lambda: alive.append(1),
        )
    assert applied == 2
    assert news == [1, 5]  # called once each, after the answer is stored
    assert len(alive) == 1 + len(events)  # the keep-alive and every event say it is up
    assert ob.answers.answers_after == 5
    status = ob.status("c1")
    assert status is not None
    assert status.answers == {"h0": "decline"}
    assert status.reasons == {"h0": "満床"}
    skipped = [r.getMessage() for r in caplog.records]
    assert skipped == ["device event 2 skipped (KeyError)", "device event 3 skipped (OutboxError)"]
    # Read again from the durable cursor: nothing is applied twice.
    assert follow_answers(stream, ob.answers) == 0
    assert stream.after == [0, 5]
    ob.close()
