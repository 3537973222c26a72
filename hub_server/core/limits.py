"""The body limit (413) and every rate limit (429) of the hub, decided here.

``BodyLimitMiddleware`` refuses a body over the limit with 413 ``body_too_large``
whether it announces its length (``Content-Length``) or not (chunked): the count is
kept while the body is read and the 413 goes out the moment the limit is passed,
whatever the application then makes of the interrupted read.

The middlewares and the token buckets are the shared door (``door``: the hospital's
direct endpoint has the same); the hub's part is who pays where.

The rate limits (token buckets of ``door.ratelimit``, per process):

- at the door (``Door.wait``), before any work: every request that is not a signed
  request to a signed route is charged to the bucket of its client address (the unsigned
  routes: enrollment, patient challenges and history, hub key, health, the OpenAPI
  pages; and anything that does not even carry a signature); a signed request passes
  unless its address has used up its failed-signature budget. The door is asked once per
  request: by the server's protocol under ``kyukyu hub serve`` (``core.server``: a
  refusal there costs no ASGI task), else by ``RateLimitMiddleware``;
- at the signature check (``SignatureLimits``, called by ``api.deps``): an address past
  its failed-signature budget is refused before its signature is looked at, a failed
  check is charged to its address, and a verified signed request to its key id.
"""

from __future__ import annotations

import re
from typing import Any

from door import (
    DOOR_CHECKED,
    RATE_LIMITED,
    BodyLimitMiddleware,
    RateLimitMiddleware,
    Rates,
)
from hub_server.core.errors import TooManyRequests

__all__ = [
    "DOOR_CHECKED",
    "RATE_LIMITED",
    "BodyLimitMiddleware",
    "Door",
    "RateLimitMiddleware",
    "SignatureLimits",
    "signed_route_matcher",
]


# Signed routes: the router's path patterns of the routes that authenticate their caller.
def signed_route_matcher(app: Any) -> tuple[frozenset[str], list[re.Pattern[str]]]:
    """(static paths, patterns) of the routes of ``app`` that require a signed caller."""
    from fastapi.routing import APIRoute

    from hub_server.api.deps import SIGNING_DEPENDENCIES

    auth = set(SIGNING_DEPENDENCIES)

    def signed(dep: Any) -> bool:
        return dep.call in auth or any(signed(d) for d in dep.dependencies)

    static: set[str] = set()
    patterns: list[re.Pattern[str]] = []

    def walk(routes: Any) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                if signed(route.dependant):
                    if "{" in route.path:
                        patterns.append(route.path_regex)
                    else:
                        static.add(route.path)
                continue
            # Included routers (FastAPI >= 0.16x keeps them as branches; no prefixes here).
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)

    walk(app.routes)
    return frozenset(static), patterns


class Door:
    """Who pays for a request, before any work: unsigned requests (and anything sent to a
    route that is not a signed route) the unsigned bucket of their address; signed
    requests nothing here, unless their address has used up its failed-signature budget.
    Called by ``RateLimitMiddleware`` and, under ``kyukyu hub serve``, by the protocol
    itself (``core.server``: a refusal there costs no ASGI task at all)."""

    def __init__(self, rates: Rates, fastapi_app: Any) -> None:
        self.rates = rates
        self.fastapi_app = fastapi_app
        self._signed: tuple[frozenset[str], list[re.Pattern[str]]] | None = None

    def _is_signed_route(self, path: str) -> bool:
        if self._signed is None:
            self._signed = signed_route_matcher(self.fastapi_app)
        static, patterns = self._signed
        return path in static or any(p.match(path) for p in patterns)

    def wait(self, path: str, headers: list[tuple[bytes, bytes]], client: str) -> float:
        """0.0: go ahead; else the seconds until this client may send again (429)."""
        has_signature = any(name == b"x-kyukyu-signature" for name, _ in headers)
        if has_signature and self._is_signed_route(path):
            return self.rates.auth_failures.empty(client)
        return self.rates.unsigned.take(client)


_SLOW_DOWN_JA = RATE_LIMITED[2]


def _slow_down(wait: float, what: str) -> TooManyRequests:
    return TooManyRequests(
        "rate_limited", f"too many {what}; retry later", _SLOW_DOWN_JA, retry_after=wait
    )


class SignatureLimits:
    """The limits of signed requests, where their signature is checked (``api.deps``)."""

    def __init__(self, rates: Rates) -> None:
        self.rates = rates

    def before_check(self, client: str) -> None:
        """429 for an address past its failed-signature budget (nothing is looked at)."""
        wait = self.rates.auth_failures.empty(client)
        if wait > 0:
            raise _slow_down(wait, "failed signature checks from this address")

    def failed(self, client: str) -> None:
        """A failed signature check (401, 403) of this address."""
        self.rates.auth_failures.take(client)

    def verified(self, key_id: str, kind: str) -> None:
        """429 for a signed caller sending faster than its key id's bucket allows."""
        wait = self.rates.identity.take(key_id)
        if wait > 0:
            raise _slow_down(wait, f"requests of this {kind}")
