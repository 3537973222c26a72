"""``create_app(settings)``: builds the engine, state and FastAPI app (nothing at import time)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub_server import crud
from hub_server.api.routes import (
    availability,
    cases,
    device_keys,
    devices,
    direct_receipts,
    events,
    hospitals,
    hub,
    identities,
    incidents,
    operators,
    patients,
    refused_cases,
    revocation,
    summaries,
    trust,
)
from hub_server.core.certs import CertificateVerifier
from hub_server.core.config import Settings
from hub_server.core.db import (
    instrument_pool,
    libpq_url,
    make_autocommit_engine,
    make_engine,
    migrate,
    utcnow,
)
from hub_server.core.errors import (
    Conflict,
    HubError,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
    Unavailable,
    UpstreamUnreadable,
)
from hub_server.core.events import EventBus, PendingEvent, PgListener
from hub_server.core.events.leases import StreamLeases
from hub_server.core.limits import BodyLimitMiddleware, Door, RateLimitMiddleware
from hub_server.core.observe import ObservedMiddleware
from hub_server.core.security import HubKey
from hub_server.core.state import HubState

__all__ = ["HTTP_STATUS", "app_from_env", "build_state", "create_app", "http_status", "purge_once"]

log = logging.getLogger("hub_server")


def build_state(
    settings: Settings, *, hub_key: HubKey | None = None, medical_source: Any = None
) -> HubState:
    """Engine, migrations, keys and verifier for one hub process."""
    settings.check()
    if settings.run_migrations:
        migrate(settings.db_url)
    engine = make_engine(settings.db_url, pool_size=settings.pool_size)
    if hub_key is None:
        hub_key = (
            HubKey.load_or_create(settings.hub_key_path)
            if settings.hub_key_path is not None
            else HubKey.generate()
        )
    state = HubState(
        settings=settings,
        engine=engine,
        autocommit=make_autocommit_engine(settings.db_url, pool_size=settings.pool_size),
        hub_key=hub_key,
        bus=EventBus(),
        medical_source=medical_source,
    )
    metrics = state.metrics
    for name, pool_engine in (("main", state.engine), ("autocommit", state.autocommit)):
        if pool_engine is not None:
            instrument_pool(
                pool_engine,
                in_use=metrics.db_pool_in_use.labels(pool=name),
                waiting=metrics.db_pool_waiting.labels(pool=name),
            )
    state.verifier = CertificateVerifier(
        settings.trust_roots_dir,
        allow_test_roots=settings.allow_test_roots,
        revoked_serials=state.revoked_serials,
    )
    return state


def purge_once(state: HubState) -> int:
    """Retention: purge delivered sealed cases, expired nonces, challenges, idempotency keys."""
    s = state.settings
    with state.session() as session:
        now = utcnow()
        n = crud.purge_cases(
            session,
            now=now,
            retention=timedelta(seconds=s.case_retention_seconds),
            undelivered_retention=timedelta(seconds=s.undelivered_retention_seconds),
        )
        crud.purge_idempotency(session, now=now, retention=timedelta(days=1))
        crud.purge_expired(session, now=utcnow())
        session.commit()
    return n


async def _purge_loop(state: HubState) -> None:
    while True:
        await asyncio.sleep(state.settings.purge_interval_seconds)
        try:
            n = await asyncio.to_thread(purge_once, state)
            if n:
                log.info("purged %d delivered sealed cases", n)
        except Exception as exc:  # keep serving; try again next round
            log.warning("purge failed: %s", type(exc).__name__)


def purge_challenges_once(state: HubState) -> int:
    """Drop expired challenges (unsigned callers create them: they must not pile up)."""
    with state.session() as session:
        n = crud.purge_expired_challenges(session, now=utcnow())
        session.commit()
    return n


async def _challenge_purge_loop(state: HubState) -> None:
    while True:
        await asyncio.sleep(state.settings.challenge_purge_seconds)
        try:
            await asyncio.to_thread(purge_challenges_once, state)
        except Exception as exc:  # keep serving; try again next round
            log.warning("challenge purge failed: %s", type(exc).__name__)


def _guard_tasks(state: HubState) -> list[asyncio.Task[None]]:
    """Background work of issue 10: challenge purge, SQLite revocation watch, checkpoints."""
    from hub_server.core.checkpoints import CheckpointExporter
    from hub_server.core.revocation_watch import RevocationWatch

    tasks = [asyncio.create_task(_challenge_purge_loop(state))]
    if not state.settings.is_postgres:
        tasks.append(asyncio.create_task(RevocationWatch(state).run()))
    exporter = CheckpointExporter(state)
    if exporter.enabled:
        tasks.append(asyncio.create_task(exporter.run()))
    return tasks


# The one mapping of the hub's domain errors to HTTP (the most specific class wins).
HTTP_STATUS: dict[type[HubError], int] = {
    InvalidInput: 422,
    NotAuthenticated: 401,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    TooManyRequests: 429,
    Unavailable: 503,
    UpstreamUnreadable: 502,
}


def http_status(exc: HubError) -> int:
    """The HTTP status that answers ``exc`` (500 for a kind nobody mapped)."""
    for kind in type(exc).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500


def _error_response(exc: HubError, status: int | None = None) -> Response:
    headers = getattr(exc, "headers", None)  # e.g. Retry-After of a 503 (admission)
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return Response(
        exc.to_json(),
        status_code=status or http_status(exc),
        headers=headers,
        media_type="application/json",
    )


# A value the database cannot hold (a NUL character in a path, say): the caller's.
_INVALID_VALUE = InvalidInput(
    "invalid_value", "a value in the request cannot be stored", "入力値が不正です。"
)


def _events_with_data(hub: HubState, events: list[PendingEvent]) -> list[PendingEvent]:
    with hub.session() as session:
        return crud.events_with_data(session, events)


def create_app(
    settings: Settings, *, state: HubState | None = None, medical_source: Any = None
) -> FastAPI:
    """The hub's ASGI app. ``state`` may be given (tests share one between apps)."""
    hub_state = state or build_state(settings, medical_source=medical_source)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        listener = None
        if hub_state.settings.is_postgres:
            listener = PgListener(
                libpq_url(hub_state.settings.db_url),
                hub_state.bus,
                connected=hub_state.metrics.listener_connected,
                fill=functools.partial(_events_with_data, hub_state),
            )
            listener.start()
            if hub_state.stream_leases is None:  # the stream cap across processes and hosts
                hub_state.stream_leases = StreamLeases(libpq_url(hub_state.settings.db_url))
        purger = asyncio.create_task(_purge_loop(hub_state))
        guards = _guard_tasks(hub_state)
        if hub_state.settings.request_threads > 0:
            import anyio.to_thread

            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = hub_state.settings.request_threads
        app.state.listener = listener
        try:
            yield
        finally:
            purger.cancel()
            for task in guards:
                task.cancel()
            if listener is not None:
                await listener.stop()
            if hub_state.stream_leases is not None:
                await asyncio.to_thread(hub_state.stream_leases.close)
            await asyncio.to_thread(hub_state.close)
            hub_state.engine.dispose()
            if hub_state.autocommit is not None:
                hub_state.autocommit.dispose()

    app = FastAPI(
        title="kyukyu hub",
        version="1",
        summary="マイナ救急 platform: enrollment, summary look-up, sealed case routing, audit",
        description=(
            "Devices, hospitals and operators sign every request with their Ed25519 key "
            "(headers X-Kyukyu-Key-Id, X-Kyukyu-Timestamp, X-Kyukyu-Nonce, X-Kyukyu-Signature; "
            'see docs/interfaces.md). Errors are `{"error": {code, message_ja, message_en}}`.'
        ),
        lifespan=lifespan,
    )
    app.state.hub = hub_state
    app.add_middleware(BodyLimitMiddleware, max_bytes=hub_state.settings.max_body_bytes)
    # Added last: runs first, before the body is read.
    door = Door(hub_state.rates, app)
    app.add_middleware(RateLimitMiddleware, door=door)
    # Added last of all: sees every answer (the door's 429s, the 413s, the outages' 503s).
    app.add_middleware(ObservedMiddleware, hub=hub_state, fastapi_app=app)
    from hub_server.core import server

    # The limits of `kyukyu hub serve`'s protocol; it asks the door itself (cheaper).
    server.configure(hub_state.settings, door=door)

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> Response:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        # The message names the field only: the rejected value may be patient data.
        return _error_response(
            InvalidInput(
                "invalid_request",
                f"invalid request: {where}: {first.get('msg', 'invalid')}",
                "リクエストの内容が正しくありません。",
            )
        )

    @app.exception_handler(DataError)
    async def _data(_request: Request, exc: DataError) -> Response:
        return _error_response(_INVALID_VALUE)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return _error_response(HubError("http_error", str(exc.detail)), exc.status_code)

    # The cases router first: every case post is matched against the routes before it
    # (FastAPI's route matching costs CPU per candidate). Route paths do not overlap, so
    # the order changes nothing else (the OpenAPI document lists the same paths).
    for module in (
        cases,
        direct_receipts,
        hub,
        identities,
        operators,
        devices,
        device_keys,
        hospitals,
        summaries,
        events,
        patients,
        refused_cases,
        revocation,
        trust,
        availability,
        incidents,
    ):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for several uvicorn workers (PostgreSQL): settings from ``KYUKYU_HUB_*``
    (migrated already); the default GIL switch interval (see ``kyukyu hub serve``)."""
    from hub_server.core.capacity import tune_gc

    tune_gc()  # a fresh worker process
    return create_app(Settings.from_env(run_migrations=False))
