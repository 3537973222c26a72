"""A stale directory and a recording platform client, for the re-seal tests (a device
sealing from an older directory than the platform's policy; tests/edge/test_reseal.py,
tests/edge/test_pq_closures.py, tests/ui/test_pq_hospitals.py)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from edge.flow import CaseView
from sync import HttpStatusError, SealedCase, TransportError
from sync.client import HospitalDirectory

__all__ = ["Recorder", "stale"]


def stale(directory: HospitalDirectory, names: tuple[str, ...] | None = None) -> HospitalDirectory:
    """The directory as an older copy had it: no policy, no hybrid keys (``names``: only
    these hospitals)."""
    return HospitalDirectory(
        [replace(h, xwing_public_key=None) for h in directory if names is None or h.name in names],
        require_pq=False,
    )


class Recorder:
    """The real platform client, recording each case post (its key, the envelope's
    version, the outcome), closure post (version, outcome, recipients) and directory
    fetch; ``down`` plays a lost network; ``lagging``: the directory comes from a replica
    that has neither the policy nor the hybrid keys yet (still hub-signed and checked by
    the client)."""

    def __init__(self, inner: Any, *, down: bool = False, lagging: bool = False) -> None:
        self.inner = inner
        self.down = down
        self.lagging = lagging
        self.lock = threading.Lock()
        self.events: list[tuple[str, ...]] = []
        self.fetches = 0

    def _check(self) -> None:
        if self.down:
            raise TransportError("network down (test)")

    def post_case(self, case_id: str, recipients: list[str], envelope: bytes, **kw: Any) -> Any:
        self._check()
        version = str(SealedCase.from_bytes(envelope).version)
        try:
            out = self.inner.post_case(case_id, recipients, envelope, **kw)
        except HttpStatusError as exc:
            with self.lock:
                self.events.append(("post", kw["idempotency_key"], version, str(exc.hub_code)))
            raise
        with self.lock:
            self.events.append(("post", kw["idempotency_key"], version, "201"))
        return out

    def post_closure(self, case_id: str, recipients: list[str], envelope: bytes) -> Any:
        self._check()
        version = str(SealedCase.from_bytes(envelope).version)
        try:
            out = self.inner.post_closure(case_id, recipients, envelope)
        except HttpStatusError as exc:
            with self.lock:
                self.events.append(("closure", version, str(exc.hub_code), *recipients))
            raise
        with self.lock:
            self.events.append(("closure", version, "201", *recipients))
        return out

    def hospital_directory(self, lat: float, lon: float) -> Any:
        self._check()
        directory = self.inner.hospital_directory(lat, lon)
        with self.lock:
            self.fetches += 1
        return stale(directory) if self.lagging else directory

    def device_events(self, after: int = 0, stop: Any = None, on_keepalive: Any = None) -> Any:
        self._check()
        return self.inner.device_events(after=after, stop=stop, on_keepalive=on_keepalive)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def posts(self) -> list[tuple[str, ...]]:
        with self.lock:
            return [e[1:] for e in self.events if e[0] == "post"]

    def closures(self) -> list[tuple[str, ...]]:
        """Each closure post: (envelope version, outcome, recipient ids ...)."""
        with self.lock:
            return [e[1:] for e in self.events if e[0] == "closure"]

    def watch(self, view: CaseView) -> None:
        states = tuple(sorted((r.name, r.state() or "-") for r in view.hospitals))
        with self.lock:
            self.events.append(("view", *(f"{n}={s}" for n, s in states)))
