"""FastAPI dependencies: the session, the hub state, and signed-request authentication.

Every call of a device, hospital, operator or technician is signed (``sync.signing``):
the signature is checked against the key registered with the hub, the timestamp
against the allowed skew, and the nonce is recorded in the shared ``nonces`` table
(a replay is refused with 401 on every hub process). A revoked caller gets 403.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection
from sqlmodel import Session

from hub_server import crud
from hub_server.api.admission import admitted
from hub_server.core.db import utcnow
from hub_server.core.errors import (
    NotAllowed,
    NotAuthenticated,
    RequestReplayed,
    revoked_caller,
)
from hub_server.core.limits import SignatureLimits
from hub_server.core.observe import IDENTITY
from hub_server.core.state import HubState
from hub_server.services.nonces import record_pending_nonce
from sync.signing import SignatureError, check_request

__all__ = [
    "SIGNING_DEPENDENCIES",
    "AdmittedDeviceDep",
    "DeviceDep",
    "HospitalDep",
    "HubDep",
    "OperatorDep",
    "RelayingHospitalDep",
    "SessionDep",
    "SignedDep",
    "StaffDep",
    "admitted_device",
    "ascii_decimal",
    "authenticate",
    "authenticate_device",
    "require",
]

_SIGNATURE_MESSAGES = {
    "missing": ("missing_signature", "the request is not signed", "リクエストに署名がありません。"),
    "malformed": (
        "malformed_signature",
        "the signature headers are malformed",
        "署名の形式が不正です。",
    ),
    "stale": (
        "stale_request",
        "the request timestamp is outside the allowed window (check the device clock)",
        "リクエストの時刻がずれています。端末の時計を確認してください。",
    ),
    "unknown_key": ("unknown_key", "the signing key is not registered", "登録されていない鍵です。"),
    "bad_signature": ("bad_signature", "the signature does not verify", "署名を検証できません。"),
}


def ascii_decimal(text: str | None, *, max_digits: int = 18) -> int | None:
    """A header's number: 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` alone accepts "²" or "٣" (which ``int`` then refuses or reads), and
    ``int`` reads any length: every number the hub takes from a header goes through here.
    """
    if text is None or not 0 < len(text) <= max_digits or not text.isascii():
        return None
    return int(text) if text.isdigit() else None


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def get_hub(request: Request) -> HubState:
    # async on purpose: a plain ``def`` dependency costs a thread-pool hop per request.
    hub: HubState = request.app.state.hub
    return hub


HubDep = Annotated[HubState, Depends(get_hub)]


async def get_session(hub: HubDep) -> AsyncIterator[Session]:
    # Creating a session does no I/O (it connects lazily, inside the sync route's thread);
    # closing it only hands the connection back to the pool.
    with hub.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _path_and_query(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _check(
    hub: HubState,
    headers: dict[str, str],
    method: str,
    path: str,
    body: bytes,
    client: str,
    defer_nonce: bool = False,
    keys: crud.DeviceKeyCache | None = None,
) -> crud.Principal:
    """Authenticate; failures (401, 403) are counted per client address, and an address
    past its budget gets 429 before its signature is even looked at (``SignatureLimits``)."""
    limits = SignatureLimits(hub.rates)
    limits.before_check(client)
    try:
        principal = _verify(hub, headers, method, path, body, defer_nonce, limits, keys)
    except (NotAuthenticated, NotAllowed):
        limits.failed(client)
        raise
    return principal


def _verify(
    hub: HubState,
    headers: dict[str, str],
    method: str,
    path: str,
    body: bytes,
    defer_nonce: bool,
    limits: SignatureLimits,
    keys: crud.DeviceKeyCache | None = None,
) -> crud.Principal:
    stamp = headers.get("x-kyukyu-timestamp")
    if stamp is not None and ascii_decimal(stamp, max_digits=12) is None:
        code, en, ja = _SIGNATURE_MESSAGES["malformed"]
        raise NotAuthenticated(code, en, ja)
    found: dict[str, crud.Principal] = {}
    # An autocommit connection, opened when needed: one round trip for the key (none for
    # a device key known to ``keys``), no transaction to end.
    with contextlib.ExitStack() as stack:
        opened: list[Connection] = []

        def conn() -> Connection:
            if not opened:
                opened.append(stack.enter_context(hub.autocommit_connection()))
            return opened[0]

        def key_for(key_id: str) -> Ed25519PublicKey | None:
            hit = keys.get(key_id) if keys is not None else None
            if hit is None:
                hit = crud.principal_for(conn(), key_id)
                if hit is None:
                    return None
                if keys is not None and not getattr(hit[0].row, "revoked", False):
                    keys.put(key_id, *hit)
            found["p"] = hit[0]
            return hit[1]

        try:
            signed = check_request(
                headers, method, path, body, key_for, max_skew=hub.settings.max_skew_seconds
            )
        except SignatureError as exc:
            code, en, ja = _SIGNATURE_MESSAGES.get(exc.code, ("bad_signature", str(exc), ""))
            raise NotAuthenticated(code, en, ja) from None
        principal = found["p"]
        if getattr(principal.row, "revoked", False):
            raise revoked_caller(principal.kind)
        limits.verified(signed.key_id, principal.kind)
        expires = utcnow() + timedelta(seconds=2 * hub.settings.max_skew_seconds + 60)
        if defer_nonce:
            principal.nonce, principal.nonce_expires = signed.nonce, expires
            return principal
        fresh = crud.record_nonce(
            conn(), key_id=signed.key_id, nonce=signed.nonce, expires_at=expires
        )
        if not fresh:
            raise RequestReplayed
        return principal


async def authenticate(request: Request) -> crud.Principal:
    """The signed caller of this request (401 unsigned/stale/replayed, 403 revoked)."""
    body = await request.body()
    hub: HubState = request.app.state.hub
    headers = {k: v for k, v in request.headers.items()}
    principal: crud.Principal = await run_in_threadpool(
        _check, hub, headers, request.method, _path_and_query(request), body, _client(request)
    )
    request.scope[IDENTITY] = principal.key_id  # the access log's identity
    return principal


SignedDep = Annotated[crud.Principal, Depends(authenticate)]


def require(*kinds: str) -> Callable[..., Coroutine[Any, Any, crud.Principal]]:
    """A dependency that admits only callers of the given kinds (else 403)."""

    async def dependency(principal: SignedDep) -> crud.Principal:
        if principal.kind not in kinds:
            raise NotAllowed(
                "forbidden",
                f"a {principal.kind} may not do this (allowed: {', '.join(kinds)})",
                "この操作は許可されていません。",
            )
        return principal

    return dependency


def _authenticate_device(
    hub: HubState,
    headers: dict[str, str],
    path: str,
    body: bytes,
    client: str,
    keys: crud.DeviceKeyCache | None,
    kind: str = "device",
) -> crud.Principal:
    """The signed ``POST`` of a device (or of ``kind``: a hospital relaying a case), its
    nonce left for the route's transaction; 403 for any other caller."""
    principal = _check(hub, headers, "POST", path, body, client, True, keys)
    if principal.kind != kind:
        record_pending_nonce(hub, principal)
        raise NotAllowed(
            "forbidden",
            f"a {principal.kind} may not do this (allowed: {kind})",
            "この操作は許可されていません。",
        )
    return principal


async def admitted_device(request: Request) -> AsyncIterator[crud.Principal]:
    """Admission (``api.admission``: 503 ``overloaded`` before any work), then the signed
    device (``authenticate_device``), in one dependency: the case route's whole way in."""
    hub: HubState = request.app.state.hub
    with admitted(hub):
        yield await authenticate_device(request)


async def authenticate_device(request: Request) -> crud.Principal:
    """The signed device of a ``POST`` whose nonce the route records in its own
    transaction (``principal.nonce``; on failure ``services.nonces.record_pending_nonce``):
    401, 403 (revoked, or not a device) as ``authenticate``.

    PostgreSQL: a device's key is taken from ``HubState.device_keys`` (a device's key
    never changes; its revocation is read where its request is stored:
    ``services.case_writer``). A known key is checked here on the event loop (no I/O,
    one Ed25519 verification); anything else on a request thread (one hop).
    """
    return await _signed_post(request, "device")


async def relaying_hospital(request: Request) -> crud.Principal:
    """The signed hospital of a ``POST`` whose nonce the route records in its own
    transaction, like ``authenticate_device`` (a hospital handing in a case it received
    directly: ``services.case_submission.relay_case``)."""
    return await _signed_post(request, "hospital")


async def _signed_post(request: Request, kind: str) -> crud.Principal:
    body = await request.body()
    hub: HubState = request.app.state.hub
    headers = {k: v for k, v in request.headers.items()}
    path, client = _path_and_query(request), _client(request)
    keys = hub.device_keys if kind == "device" and hub.settings.is_postgres else None
    key_id = headers.get("x-kyukyu-key-id")
    known = keys.only(key_id) if keys is not None and key_id else None
    if known is not None:  # no I/O: stay on the event loop
        principal = _authenticate_device(hub, headers, path, body, client, known)
    else:
        principal = await run_in_threadpool(
            _authenticate_device, hub, headers, path, body, client, keys, kind
        )
    request.scope[IDENTITY] = principal.key_id  # the access log's identity
    return principal


DeviceDep = Annotated[crud.Principal, Depends(require("device"))]
# An admitted device whose nonce the route must record (``principal.nonce``) in its
# transaction.
AdmittedDeviceDep = Annotated[crud.Principal, Depends(admitted_device)]
#: The dependencies that authenticate a signed caller (``core.limits.signed_route_matcher``).
SIGNING_DEPENDENCIES = (authenticate, admitted_device, relaying_hospital)
HospitalDep = Annotated[crud.Principal, Depends(require("hospital"))]
# A hospital whose nonce the route must record (``principal.nonce``) in its transaction.
RelayingHospitalDep = Annotated[crud.Principal, Depends(relaying_hospital)]
OperatorDep = Annotated[crud.Principal, Depends(require("operator"))]
StaffDep = Annotated[crud.Principal, Depends(require("operator", "technician"))]
