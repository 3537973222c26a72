"""The door both HTTP servers of the project share (the platform and the hospital's
direct endpoint): the body limit (413), the rate-limit middleware (429) and the token
buckets behind it. Neither server imports the other; both import this.
"""

from __future__ import annotations

from door.limits import (
    DOOR_CHECKED,
    RATE_LIMITED,
    BodyLimitMiddleware,
    DoorCheck,
    RateLimitMiddleware,
)
from door.ratelimit import RateLimiter, Rates

__all__ = [
    "DOOR_CHECKED",
    "RATE_LIMITED",
    "BodyLimitMiddleware",
    "DoorCheck",
    "RateLimitMiddleware",
    "RateLimiter",
    "Rates",
]
