"""Retry timing: exponential backoff with full jitter, capped, honouring Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """``delay(n) = uniform(0, min(cap, base * 2**n))`` ("full jitter", AWS architecture blog).

    A server's ``Retry-After`` is a floor (never retry earlier than asked), itself
    capped by ``max_retry_after`` so a wrong header cannot park a case for a day.
    """

    base: float = 0.5
    cap: float = 60.0
    max_retry_after: float = 600.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts failures, from 1)."""
        exp = min(self.cap, self.base * (2 ** min(max(attempt - 1, 0), 32)))
        wait = self.rng.uniform(0.0, exp)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait
