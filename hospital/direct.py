"""The hospital's direct endpoint: cases straight from the ambulances while the platform is
out (docs/disaster.md).

A small FastAPI app on a listener of its own (``direct_listen_port``, HTTPS with the
certificate the hospital registered on the platform, which devices pin from the signed
directory). Only enrolled devices get past it: every request is signed by the device
(``sync.signing``, the same scheme as on the platform), its key comes from the hub-signed
device roster the hospital holds (``sync.roster.DeviceRoster``): an unknown or revoked
device is refused (403 ``unknown_device``), a replayed nonce too (401). The body limit and
the per-address and per-device rate limits and the connection-level limits of the
protocol (header bytes and time, body time, connections per client) are the platform's own
code (``door``, ``door.server``).

Routes (all device-signed):

- ``POST /direct/v1/cases`` ``{case_id, recipients, envelope}`` + ``Idempotency-Key``: the
  sealed case, opened and stored like one from the platform's stream (``route`` direct);
  the same case again answers 200 (stored once).
- ``POST /direct/v1/cases/{id}/closure`` ``{recipients, envelope}``: 中止 / 不搬送.
- ``POST /direct/v1/cases/{id}/destination`` ``{hospital_id, via}``: 搬送先決定 (this
  hospital or another).
- ``GET /direct/v1/answers?after=N``: the answers to this device's cases after number N.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from door import BodyLimitMiddleware, RateLimiter, RateLimitMiddleware
from door.server import ServerLimits, configure
from errbase import error_body
from hospital.errors import DirectRefused
from hospital.service import ReceivingService
from sync.signing import MAX_SKEW_SECONDS, SignatureError, check_request

__all__ = ["DirectLimits", "create_direct_app", "uvicorn_options"]

_CASE_ID = r"^[A-Za-z0-9._:-]+$"


class _Strict(BaseModel):
    model_config = {"extra": "forbid"}


class DirectCase(_Strict):
    case_id: str = Field(min_length=1, max_length=80, pattern=_CASE_ID)
    recipients: list[str] = Field(min_length=1, max_length=64)
    envelope: str = Field(min_length=1, max_length=400_000)


class DirectClosure(_Strict):
    recipients: list[str] = Field(min_length=1, max_length=64)
    envelope: str = Field(min_length=1, max_length=400_000)


class DirectDestination(_Strict):
    hospital_id: str = Field(min_length=1, max_length=40)
    via: str = Field(default="answer", pattern=r"^(answer|phone)$")


class DirectLimits(BaseModel):
    """The door of the direct endpoint (the platform's defaults)."""

    max_body_bytes: int = 256 * 1024
    unsigned_rate: float = 5.0  # per client address, requests per second
    unsigned_burst: float = 20.0
    device_rate: float = 50.0  # per signed device
    device_burst: float = 200.0
    auth_failure_rate: float = 1.0  # failed signature checks per client address
    auth_failure_burst: float = 30.0
    # header bytes and count, header and body time, connections (``door.server``)
    server: ServerLimits = Field(default_factory=lambda: ServerLimits(max_connections=512))


class _Nonces:
    """Nonces seen within the signature window (bounded): a replayed request is refused."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def first(self, key_id: str, nonce: str, now: float) -> bool:
        with self._lock:
            if len(self._seen) >= self._max:
                cutoff = now - 2 * MAX_SKEW_SECONDS
                self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
                if len(self._seen) >= self._max:
                    return False  # flooded: refuse rather than forget
            if (key_id, nonce) in self._seen:
                return False
            self._seen[(key_id, nonce)] = now
            return True


# The platform's codes for the same failures (docs/hub.md, "Authentication and roles").
_SIGNATURE_CODES = {
    "missing": "missing_signature",
    "malformed": "malformed_signature",
    "stale": "stale_request",
    "bad_signature": "bad_signature",
}


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DirectRefused)
    headers = (
        {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))} if exc.retry_after else None
    )
    return JSONResponse(
        error_body(exc.code, exc.message_en, exc.message_ja),
        status_code=exc.status,
        headers=headers,
    )


def _slow_down(wait: float, what: str) -> DirectRefused:
    return DirectRefused(
        429, "rate_limited", f"too many {what}; retry later",
        "リクエストが多すぎます。しばらくしてから再試行してください。", retry_after=wait,
    )  # fmt: skip


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], raw: bytes) -> _M:
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        # The field's name is enough; the value (an envelope) is never echoed.
        raise DirectRefused(
            422,
            "invalid_request",
            "the request body is not valid",
            "要求の形式が正しくありません。",
        ) from None


# The device-signed routes (where the signature is checked, and a failure charged): a
# signature header anywhere else (the health check, an unknown path) pays as unsigned.
_SIGNED_ROUTE = re.compile(r"^/direct/v1/(cases|answers|cases/[^/]+/(closure|destination))$")


class _AddressDoor:
    """Who pays at the door, as on the platform (``hub_server.core.limits``): an unsigned
    request its address's bucket; a signed one passes to its signature check (where the
    device's own bucket is charged) unless its address is past its failed-signature
    budget: every failed check is charged to the address (``device_of``)."""

    def __init__(self, unsigned: RateLimiter, auth_failures: RateLimiter) -> None:
        self.unsigned = unsigned
        self.auth_failures = auth_failures

    def wait(self, path: str, headers: list[tuple[bytes, bytes]], client: str) -> float:
        has_signature = any(name == b"x-kyukyu-signature" for name, _ in headers)
        if has_signature and _SIGNED_ROUTE.match(path):
            return self.auth_failures.empty(client)
        return self.unsigned.take(client)


def create_direct_app(service: ReceivingService, limits: DirectLimits | None = None) -> FastAPI:
    """The direct endpoint of ``service`` (its roster, store and answers)."""
    limits = limits or DirectLimits()
    app = FastAPI(title="kyukyu hospital direct route", docs_url=None, redoc_url=None)
    nonces = _Nonces()
    per_device = RateLimiter(limits.device_rate, limits.device_burst)
    door = _AddressDoor(
        RateLimiter(limits.unsigned_rate, limits.unsigned_burst),
        RateLimiter(limits.auth_failure_rate, limits.auth_failure_burst),
    )
    app.add_exception_handler(DirectRefused, _refused)

    def failed(client: str, refusal: DirectRefused) -> DirectRefused:
        door.auth_failures.take(client)  # a failed check is charged to the address
        return refusal

    async def device_of(request: Request) -> tuple[str, bytes]:
        client = request.client.host if request.client is not None else ""
        wait = door.auth_failures.empty(client)
        if wait > 0:  # past its failed-signature budget: nothing is looked at
            raise _slow_down(wait, "failed signature checks from this address")
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            got = check_request(
                dict(request.headers),
                request.method,
                path,
                body,
                lambda key_id: (
                    service.direct.roster(key_id[7:]) if key_id.startswith("device:") else None
                ),
            )
        except SignatureError as exc:
            if exc.code == "unknown_key":
                raise failed(client, DirectRefused(
                    403, "unknown_device", "not an enrolled device (or revoked)",
                    "登録されていない端末です（または失効しています）。",
                )) from None  # fmt: skip
            raise failed(client, DirectRefused(
                401, _SIGNATURE_CODES.get(exc.code, "bad_signature"),
                "the request signature does not check", "署名を確認できません。",
            )) from None  # fmt: skip
        if not nonces.first(got.key_id, got.nonce, time.time()):
            raise failed(
                client,
                DirectRefused(401, "replayed_request", "replayed request", "再送された要求です。"),
            )
        wait = per_device.take(got.key_id)
        if wait > 0:
            raise _slow_down(wait, "requests of this device")
        return got.key_id[7:], body

    # The work behind each route (opening an envelope, reading the key file again, the
    # store's writes, the FHIR export) blocks: it runs in the thread pool, so one slow
    # write never stalls the other ambulances (nor the health check) on this event loop.

    @app.post("/direct/v1/cases")
    async def post_case(
        request: Request,
        idempotency_key: Annotated[
            str, Header(alias="Idempotency-Key", min_length=1, max_length=200)
        ],
    ) -> JSONResponse:
        device_id, raw = await device_of(request)
        body = _parse(DirectCase, raw)
        added = await run_in_threadpool(
            service.direct.take_direct_case, device_id, body.case_id, body.envelope
        )
        return JSONResponse(
            {"case_id": body.case_id, "hospital_id": service.identity.hospital_id},
            status_code=201 if added else 200,
        )

    @app.post("/direct/v1/cases/{case_id}/closure")
    async def post_closure(case_id: str, request: Request) -> JSONResponse:
        device_id, raw = await device_of(request)
        body = _parse(DirectClosure, raw)
        await run_in_threadpool(
            service.direct.take_direct_closure, device_id, case_id, body.envelope
        )
        return JSONResponse({"case_id": case_id}, status_code=201)

    @app.post("/direct/v1/cases/{case_id}/destination")
    async def post_destination(case_id: str, request: Request) -> JSONResponse:
        device_id, raw = await device_of(request)
        body = _parse(DirectDestination, raw)
        await run_in_threadpool(
            service.direct.take_direct_destination, device_id, case_id, body.hospital_id, body.via
        )
        return JSONResponse({"case_id": case_id})

    @app.get("/direct/v1/answers")
    async def answers(
        request: Request, after: Annotated[int, Query(ge=0, le=2**53)] = 0
    ) -> dict[str, Any]:
        device_id, _ = await device_of(request)
        found = await run_in_threadpool(service.store.direct_answers, device_id, after)
        return {"hospital_id": service.identity.hospital_id, "answers": found}

    @app.get("/direct/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # Under ``kyukyu hub serve``'s protocol (``uvicorn_options``) the door is asked by the
    # protocol itself; the middleware asks it otherwise (in-process servers, tests).
    configure(limits.server, door=door)
    app.add_middleware(RateLimitMiddleware, door=door)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    return app


def uvicorn_options() -> dict[str, Any]:
    """uvicorn's options for the direct endpoint: the door's guarded protocol (header bytes
    and time, body time, connections per client and per process: ``door.server``)."""
    from door.server import GuardedHttpToolsProtocol

    return {"http": GuardedHttpToolsProtocol, "proxy_headers": False, "timeout_keep_alive": 5}
