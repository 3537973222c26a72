"""Test world for the hub: signed clients for operators, devices and hospitals, patient cards."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub_server import crud
from hub_server.core.config import Settings
from hub_server.core.db import utcnow
from hub_server.core.state import HubState
from sync.signing import b64e, public_key_to_b64, sign_request


@dataclass
class Signer:
    key_id: str
    key: Ed25519PrivateKey

    def headers(
        self, method: str, path: str, body: bytes = b"", *, now: float | None = None
    ) -> dict[str, str]:
        return sign_request(self.key, self.key_id, method, path, body, now=now)


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def pub(key: Ed25519PrivateKey) -> str:
    return public_key_to_b64(key.public_key())


def x25519_pub() -> str:
    raw = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return b64e(raw)


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Hub:
    """A hub app in process with a signed client."""

    client: httpx.AsyncClient
    state: HubState
    operator: Signer
    hospitals: dict[str, Signer] = field(default_factory=dict)

    async def call(
        self,
        signer: Signer | None,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        now: float | None = None,
    ) -> httpx.Response:
        raw = b"" if body is None else encode(body)
        h = {"content-type": "application/json"} if body is not None else {}
        if signer is not None:
            h.update(signer.headers(method, path, raw, now=now))
        h.update(headers or {})
        return await self.client.request(method, path, content=raw, headers=h)

    async def enroll_device(
        self, fire_department: str = "東京消防庁", name: str = "救急1"
    ) -> Signer:
        r = await self.call(
            self.operator, "POST", "/v1/enrollment-tokens", {"fire_department": fire_department}
        )
        assert r.status_code == 201, r.text
        key = new_key()
        r = await self.call(
            None,
            "POST",
            "/v1/devices/enroll",
            {"token": r.json()["token"], "public_key": pub(key), "name": name},
        )
        assert r.status_code == 201, r.text
        return Signer(f"device:{r.json()['device_id']}", key)

    async def register_hospital(
        self, name: str = "病院", lat: float = 35.68, lon: float = 139.76
    ) -> tuple[str, Signer]:
        key = new_key()
        r = await self.call(
            self.operator,
            "POST",
            "/v1/hospitals",
            {
                "name": name,
                "lat": lat,
                "lon": lon,
                "hpke_public_key": x25519_pub(),
                "signing_public_key": pub(key),
            },
        )
        assert r.status_code == 201, r.text
        hid = r.json()["hospital_id"]
        return hid, Signer(f"hospital:{hid}", key)

    async def post_case(
        self,
        device: Signer,
        recipients: list[str],
        *,
        case_id: str | None = None,
        key: str | None = None,
        envelope: bytes | None = None,
    ) -> httpx.Response:
        body = {
            "case_id": case_id or f"case-{secrets.token_hex(6)}",
            "recipients": recipients,
            "envelope": base64.b64encode(envelope or secrets.token_bytes(256)).decode(),
        }
        return await self.call(
            device,
            "POST",
            "/v1/cases",
            body,
            headers={"Idempotency-Key": key or secrets.token_hex(8)},
        )


def make_operator(
    state: HubState, role: str = "operator", fire_department: str | None = None
) -> Signer:
    key = new_key()
    with state.session() as session:
        op = crud.create_operator(
            session,
            name=role,
            role=role,
            public_key=pub(key),
            fire_department=fire_department,
            now=utcnow(),
        )
        session.commit()
        return Signer(f"operator:{op.id}", key)


def card_signature(card: Any, nonce_b64url: str) -> str:
    """What the card returns for the hub's challenge: PKCS#1 v1.5 SHA-256 with the auth key."""
    from sync.signing import b64d

    sig = card.auth_key.sign(b64d(nonce_b64url), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


def cert_b64(card: Any) -> str:
    return base64.b64encode(card.auth_certificate_der).decode()


async def _sse_blocks(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """An SSE response's events, each as its fields (comments left out)."""
    lines = getattr(response, "_sse_lines", None)
    if lines is None:  # one line iterator per response: it can only be streamed once
        lines = response.aiter_lines()
        response._sse_lines = lines  # type: ignore[attr-defined]
    current: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if current:
                yield current
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")


async def sse_events(response: httpx.Response, count: int) -> list[tuple[int, str, dict[str, Any]]]:
    """Read ``count`` numbered events (id, event, data) from an SSE response."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    async for block in _sse_blocks(response):
        if "id" in block:
            out.append((int(block["id"]), block.get("event", "message"), json.loads(block["data"])))
            if len(out) >= count:
                break
    return out


async def named_events(response: httpx.Response, event: str, count: int) -> list[dict[str, Any]]:
    """The data of the next ``count`` events named ``event`` of an SSE response."""
    out: list[dict[str, Any]] = []
    async for block in _sse_blocks(response):
        if block.get("event") == event:
            out.append(json.loads(block["data"]))
            if len(out) >= count:
                break
    return out


async def put_region(hub: Hub, code: str, neighbours: list[str]) -> None:
    r = await hub.call(
        hub.operator, "PUT", f"/v1/regions/{code}", {"name": code, "neighbours": neighbours}
    )
    assert r.status_code == 200, r.text


async def enroll_device_in(hub: Hub, region: str | None) -> Signer:
    """A device enrolled over the API, in ``region`` (or none)."""
    body: dict[str, Any] = {"fire_department": "テスト消防"}
    if region is not None:
        body["region"] = region
    r = await hub.call(hub.operator, "POST", "/v1/enrollment-tokens", body)
    assert r.status_code == 201, r.text
    key = new_key()
    r = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": r.json()["token"], "public_key": pub(key), "name": "救急"},
    )
    assert r.status_code == 201, r.text
    return Signer(f"device:{r.json()['device_id']}", key)


async def register_hospital_in(
    hub: Hub, name: str, region: str
) -> tuple[str, Signer, X25519PrivateKey]:
    """A hospital registered by the operator in ``region``: (id, its signer, its HPKE key)."""
    key, hpke = new_key(), X25519PrivateKey.generate()
    r = await hub.call(
        hub.operator,
        "POST",
        "/v1/hospitals",
        {
            "name": name,
            "lat": 35.68,
            "lon": 139.76,
            "hpke_public_key": b64e(hpke.public_key().public_bytes_raw()),
            "signing_public_key": pub(key),
            "region": region,
        },
    )
    assert r.status_code == 201, r.text
    hid = r.json()["hospital_id"]
    return hid, Signer(f"hospital:{hid}", key), hpke


async def aiter_none() -> AsyncIterator[None]:  # pragma: no cover - typing helper
    if False:
        yield None


@contextlib.asynccontextmanager
async def hub_in_process(
    settings: Settings,
    *,
    medical_source: Any = None,
    adjust_app: Callable[[Any], None] | None = None,
) -> AsyncIterator[Hub]:
    """A hub app in this process (its own state, a fresh hub key) with a signed client;
    ``adjust_app`` may change the app before its first request builds the middleware."""
    from hub_server.core.security import HubKey
    from hub_server.main import build_state, create_app
    from tests.hub_server._asgi import StreamingASGITransport

    state = build_state(settings, hub_key=HubKey.generate(), medical_source=medical_source)
    app = create_app(settings, state=state)
    if adjust_app is not None:
        adjust_app(app)
    try:
        async with httpx.AsyncClient(
            transport=StreamingASGITransport(app), base_url="http://hub"
        ) as client:
            yield Hub(client=client, state=state, operator=make_operator(state))
    finally:
        state.close()
        state.engine.dispose()
        if state.autocommit is not None:
            state.autocommit.dispose()


async def until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    """Wait until ``check()`` is true (polled every 20 ms); AssertionError naming ``what``
    after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
