"""The hot path of ``POST /v1/cases``: a pure ASGI handler in front of the router.

Every ambulance's case goes through this route, so it skips the framework's per-request
machinery (route matching, dependency solving, exception middlewares) and makes one
thread hop for authentication and storage together instead of two. It does exactly
what the FastAPI route (``api/routes/cases.py``) does, with the same functions:
admission (``admission.admitted``), the signed-request check (``deps.authenticate_device``),
``services.case_submission.submit_case`` and the same error bodies. Anything it does not
handle in the plain way (a query string, a missing or odd header, a body that does not
validate) goes on to that route untouched, body included, so the route's answers
(``invalid_request`` naming the field, and the OpenAPI document) stay the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub_server.api.admission import admitted
from hub_server.api.deps import ascii_decimal, authenticate_device
from hub_server.core.errors import HubError
from hub_server.core.state import HubState
from hub_server.crud import DeviceKeyCache, Principal
from hub_server.schemas import CaseCreate
from hub_server.services.case_submission import Submission, submit_case, submit_case_async

__all__ = ["CasePostMiddleware"]

_PATH = "/v1/cases"


def _known_device(hub: HubState, headers: dict[str, str]) -> DeviceKeyCache | None:
    """PostgreSQL: a cache holding just the caller's key when it is a known device (its
    authentication then needs no database), else None."""
    if not hub.settings.is_postgres:
        return None
    key_id = headers.get("x-kyukyu-key-id")
    return hub.device_keys.only(key_id) if key_id else None


def _device(
    hub: HubState,
    headers: dict[str, str],
    body: bytes,
    client: str,
    outbox_depth: int | None,
    keys: DeviceKeyCache | None,
) -> Principal:
    caller = authenticate_device(hub, headers, "POST", _PATH, body, client, keys)
    if outbox_depth is not None:  # as the route: counted once the device is known
        hub.metrics.outbox_depth.observe(outbox_depth)
    return caller


def _authenticated_submit(
    hub: HubState,
    headers: dict[str, str],
    body: bytes,
    case: CaseCreate,
    idempotency_key: str,
    client: str,
    outbox_depth: int | None,
) -> Submission:
    # PostgreSQL: devices' keys from a cache; the case writer reads revocation per batch.
    keys = hub.device_keys if hub.settings.is_postgres else None
    caller = _device(hub, headers, body, client, outbox_depth, keys)
    return submit_case(hub, caller, case, idempotency_key=idempotency_key)


class CasePostMiddleware:
    """Answers plain ``POST /v1/cases`` requests itself; passes everything else on."""

    def __init__(
        self, app: ASGIApp, *, hub: HubState, render_error: Callable[[Exception], Response | None]
    ) -> None:
        self.app = app
        self.hub = hub
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != _PATH
            or scope.get("raw_path", b"/v1/cases") != b"/v1/cases"
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "")
        depth_text = headers.get("x-kyukyu-outbox-depth")
        depth = ascii_decimal(depth_text, max_digits=7) if depth_text is not None else None
        if (
            not 1 <= len(key) <= 200
            or not headers.get("content-type", "").startswith("application/json")
            or (depth_text is not None and (depth is None or depth > 1_000_000))
        ):
            await self.app(scope, receive, send)  # the route answers (422 naming the field)
            return
        try:
            with admitted(self.hub):
                body = await _read_body(receive)
                if body is None:
                    return  # the client went away
                try:
                    case = CaseCreate.model_validate_json(body)
                except ValidationError:
                    case = None
                if case is not None:
                    client = scope["client"][0] if scope.get("client") else ""
                    known = _known_device(self.hub, headers)
                    if known is not None:  # no I/O before the commit: stay on the loop
                        caller = _device(self.hub, headers, body, client, depth, known)
                        done = await submit_case_async(self.hub, caller, case, idempotency_key=key)
                    else:
                        done = await run_in_threadpool(
                            _authenticated_submit,
                            self.hub, headers, body, case, key, client, depth,
                        )  # fmt: skip
        except (HubError, DataError) as exc:
            response = self.render_error(exc)
            if response is None:
                raise
            await response(scope, receive, send)
            return
        if case is None:  # the route answers, with the body read here
            await self.app(scope, _replay(body, receive), send)
            return
        if done.status == 201 and not done.replayed:
            self.hub.metrics.cases.inc()
        raw = done.body.encode()
        extra = [(b"idempotent-replayed", b"true")] if done.replayed else []
        await send(
            {
                "type": "http.response.start",
                "status": done.status,
                "headers": [
                    (b"content-length", str(len(raw)).encode()),
                    (b"content-type", b"application/json"),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})


async def _read_body(receive: Receive) -> bytes | None:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: Any = await receive()
        return message  # type: ignore[no-any-return]

    return replay
