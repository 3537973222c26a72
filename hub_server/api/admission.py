"""Admission control for case posts (``api.deps.admitted_device``): a surge is answered,
never left to time out.

Each process admits at most ``Settings.pending_case_limit`` case submissions at once
(waiting for a request thread or in the database). Past that, ``POST /v1/cases`` is
refused at once, before authentication or any database work, with 503
``overloaded`` and ``Retry-After`` (seconds, from the rate this process is answering
at). A refused case was not stored: the device keeps it in its outbox and sends it again
after the pause, with the same Idempotency-Key. An admitted case is handled as usual
(201 only after a durable commit, then pushed to every recipient).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from hub_server.core.errors import Unavailable
from hub_server.core.state import HubState

__all__ = ["Overloaded", "admitted"]


class Overloaded(Unavailable):
    """Too many case submissions at once here: 503 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "overloaded",
            f"the platform is busy; send the case again in {retry_after} s",
            f"混雑しています。{retry_after} 秒後に再送してください。",
        )
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class _Rate:
    """Answers per second over the last few seconds (event loop only)."""

    def __init__(self) -> None:
        self.window_start = time.monotonic()
        self.count = 0
        self.rate = 0.0

    def done(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.window_start >= 2.0:
            self.rate = self.count / (now - self.window_start)
            self.window_start, self.count = now, 0


def _retry_after(hub: HubState, rate: _Rate) -> int:
    # The time this process needs to answer what it has admitted, at least 1 s, at most 30.
    if rate.rate <= 0:
        return 1
    return max(1, min(30, math.ceil(hub.pending_cases / rate.rate)))


@contextlib.contextmanager
def admitted(hub: HubState) -> Iterator[None]:
    """Admit one case submission for the block (event loop only), or raise ``Overloaded``."""
    rate: _Rate | None = hub.case_rate
    if rate is None:
        rate = hub.case_rate = _Rate()
    if hub.pending_cases >= hub.settings.pending_case_limit:
        hub.metrics.cases_refused.inc()
        raise Overloaded(_retry_after(hub, rate))
    hub.pending_cases += 1
    hub.metrics.cases_inflight.inc()
    try:
        yield
    finally:
        hub.pending_cases -= 1
        hub.metrics.cases_inflight.dec()
        rate.done()
