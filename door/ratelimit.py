"""In-memory token buckets (per process): per client address and per signed identity.

Hand-written (about 40 lines) rather than a library: the buckets sit on the hot path of
every request, must be callable from the event loop and from request threads, must not
touch the database, and must keep their memory bounded under a flood of addresses. The
PyPI limiters (``limits``, ``pyrate-limiter``) bring storage back-ends and window
algorithms this does not need.

A bucket holds up to ``burst`` tokens and regains ``rate`` per second; a request takes
one. ``take`` answers 0.0 (go ahead) or the seconds until a token is back (the
``Retry-After``). At most ``max_keys`` buckets are kept: past that the oldest tenth is
dropped (a dropped key starts again with a full bucket: lenient, never wrong the other
way).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["RateLimiter", "Rates"]


class RateLimiter:
    """Token buckets by key (an address, a key id); thread-safe."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, monotonic stamp]
        self._lock = threading.Lock()

    def take(self, key: str, *, now: float | None = None) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is one."""
        t = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    for old in list(self._buckets)[: max(1, self.max_keys // 10)]:
                        del self._buckets[old]
                self._buckets[key] = [self.burst - 1.0, t]
                return 0.0
            tokens = min(self.burst, bucket[0] + (t - bucket[1]) * self.rate)
            bucket[1] = t
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def empty(self, key: str, *, now: float | None = None) -> float:
        """Like ``take`` without taking: the wait if the bucket is empty, else 0.0."""
        t = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            tokens = min(self.burst, bucket[0] + (t - bucket[1]) * self.rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class Rates:
    """The limiters of one hub process (built from the settings)."""

    unsigned: RateLimiter  # unsigned routes and unsigned requests, per client address
    auth_failures: RateLimiter  # failed signature checks, per client address
    identity: RateLimiter  # signed requests, per key id (after the signature verified)
