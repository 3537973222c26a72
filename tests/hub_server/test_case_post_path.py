"""The one way in of ``POST /v1/cases`` (the route ``api/routes/cases.py:post_case``):
what it answers to plain, odd and refused posts, and which of them take a request thread.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.middleware import Middleware

from hub_server.core.config import Settings
from tests.hub_server._support import Hub, encode, hub_in_process

pytestmark = pytest.mark.anyio


def _envelope() -> str:
    return base64.b64encode(secrets.token_bytes(200)).decode()


async def _answers(hub: Hub, run: str) -> list[tuple[str, int, str | None, str | None]]:
    """The same story on one hub: (what, status, error code, Idempotent-Replayed)."""
    device = await hub.enroll_device()
    other = await hub.enroll_device(name="救急2")
    hid, hospital = await hub.register_hospital()
    out: list[tuple[str, int, str | None, str | None]] = []

    async def post(what: str, signer: Any, body: Any, headers: dict[str, str]) -> None:
        if isinstance(body, dict):  # case ids are global: each run has its own
            body = {**body, "case_id": run + body["case_id"]}
        raw = body if isinstance(body, bytes) else encode(body)
        h = {"content-type": "application/json", **headers}
        if signer is not None:
            h.update(signer.headers("POST", "/v1/cases", raw))
        r = await hub.client.post("/v1/cases", content=raw, headers=h)
        code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
        out.append((what, r.status_code, code, r.headers.get("idempotent-replayed")))

    good = {"case_id": "p-1", "recipients": [hid], "envelope": _envelope()}
    await post("stored", device, good, {"Idempotency-Key": "k1"})
    await post("retried", device, good, {"Idempotency-Key": "k1"})
    await post("key reused", device, {**good, "envelope": _envelope()}, {"Idempotency-Key": "k1"})
    await post("case id taken", other, good, {"Idempotency-Key": "k2"})
    await post("unsigned", None, {**good, "case_id": "p-2"}, {"Idempotency-Key": "k3"})
    await post("hospital", hospital, {**good, "case_id": "p-3"}, {"Idempotency-Key": "k4"})
    await post("no key", device, {**good, "case_id": "p-4"}, {})
    await post("long key", device, {**good, "case_id": "p-5"}, {"Idempotency-Key": "k" * 201})
    await post("bad depth", device, {**good, "case_id": "p-6"},
               {"Idempotency-Key": "k6", "X-Kyukyu-Outbox-Depth": "-1"})  # fmt: skip
    await post("depth", device, {**good, "case_id": "p-7"},
               {"Idempotency-Key": "k7", "X-Kyukyu-Outbox-Depth": "3"})  # fmt: skip
    await post("bad json", device, b'{"case_id": "p-8", ', {"Idempotency-Key": "k8"})
    await post("no recipients", device, {**good, "case_id": "p-9", "recipients": []},
               {"Idempotency-Key": "k9"})  # fmt: skip
    await post("unknown recipient", device, {**good, "case_id": "p-10", "recipients": ["nope"]},
               {"Idempotency-Key": "k10"})  # fmt: skip
    await post("not base64", device, {**good, "case_id": "p-11", "envelope": "@@@"},
               {"Idempotency-Key": "k11"})  # fmt: skip
    await post("NUL in case id", device, {**good, "case_id": "p-\u0000"},
               {"Idempotency-Key": "k12"})  # fmt: skip
    device_id = device.key_id.split(":")[1]
    r = await hub.call(hub.operator, "POST", f"/v1/devices/{device_id}/revoke", {})
    assert r.status_code == 200, r.text
    await post("revoked", device, {**good, "case_id": "p-13"}, {"Idempotency-Key": "k13"})
    return out


# (what, status, error code, Idempotent-Replayed): the answers of the code before the
# route became the one way in (then a middleware in front of it answered the plain posts).
EXPECTED = [
    ("stored", 201, None, None),
    ("retried", 201, None, "true"),
    ("key reused", 422, "idempotency_key_reused", None),
    ("case id taken", 409, "case_exists", None),
    ("unsigned", 401, "missing_signature", None),
    ("hospital", 403, "forbidden", None),
    ("no key", 422, "invalid_request", None),
    ("long key", 422, "invalid_request", None),
    ("bad depth", 422, "invalid_request", None),
    ("depth", 201, None, None),
    ("bad json", 422, "invalid_request", None),
    ("no recipients", 422, "invalid_request", None),
    ("unknown recipient", 422, "unknown_recipient", None),
    ("not base64", 422, "bad_envelope", None),
    ("NUL in case id", 422, "invalid_request", None),
    ("revoked", 403, "revoked", None),
]


async def test_posts_get_the_answers_they_always_got(settings: Settings) -> None:
    async with hub_in_process(settings) as hub:
        assert await _answers(hub, "a-") == EXPECTED


async def test_a_query_string_is_signed_and_stored_like_any_post(settings: Settings) -> None:
    async with hub_in_process(settings) as hub:
        device = await hub.enroll_device()
        hid, _ = await hub.register_hospital()
        body = {"case_id": "q", "recipients": [hid], "envelope": _envelope()}
        r = await hub.call(device, "POST", "/v1/cases?x=1", body, headers={"Idempotency-Key": "q"})
        assert r.status_code == 201, r.text


async def test_a_known_device_is_answered_on_the_event_loop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: once a device's key is known, its case goes from the event loop to the
    case writer with no request thread in between; the first post (key unknown, read from
    the database) authenticates on a thread, and a retried key's first answer is read on
    one. SQLite: a thread for the authentication and one for the transaction."""
    from hub_server.api import deps
    from hub_server.services import case_submission

    hops: list[str] = []

    def counting(module: Any, name: str) -> None:
        real = getattr(module, name)

        async def hop(fn: Any, *args: Any) -> Any:
            hops.append(fn.__name__)
            return await real(fn, *args)

        monkeypatch.setattr(module, name, hop)

    counting(deps, "run_in_threadpool")
    counting(case_submission, "to_thread")
    async with hub_in_process(settings) as hub:
        device = await hub.enroll_device()
        hid, _ = await hub.register_hospital()
        hops.clear()
        sealed = secrets.token_bytes(256)
        for i in range(3):
            r = await hub.post_case(device, [hid], case_id=f"l{i}", key=f"l{i}", envelope=sealed)
            assert r.status_code == 201, r.text
        retried = await hub.post_case(device, [hid], case_id="l2", key="l2", envelope=sealed)
        assert retried.status_code == 201
        assert retried.headers["idempotent-replayed"] == "true"
    if settings.is_postgres:
        assert hops == ["_authenticate_device", "_failed"]
    else:
        assert hops == ["_authenticate_device", "_submit_in_transaction"] * 4


class _SendSpy:
    """Outermost user middleware: the body messages that pass through its ``send``."""

    bodies: ClassVar[list[str]] = []

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/events"):
            await self.app(scope, receive, send)
            return

        async def spying(message: Any) -> None:
            self.bodies.append(message["type"])
            await send(message)

        await self.app(scope, receive, spying)


async def test_a_stream_writes_through_the_middlewares(settings: Settings) -> None:
    """An event stream's start, events and keep-alives all go through the app's
    middlewares (there is no side door to the server's ``send``)."""
    _SendSpy.bodies = []
    from tests.hub_server._support import sse_events

    def spy(app: Any) -> None:
        app.user_middleware.insert(0, Middleware(_SendSpy))

    async with hub_in_process(settings, adjust_app=spy) as hub:
        device = await hub.enroll_device()
        hid, hospital = await hub.register_hospital()
        path = "/v1/hospitals/me/events"
        async with hub.client.stream("GET", path, headers=hospital.headers("GET", path)) as r:
            assert r.status_code == 200
            for i in range(3):
                assert (await hub.post_case(device, [hid], key=f"s-{i}")).status_code == 201
            got = await asyncio.wait_for(sse_events(r, 3), 10)
            assert [seq for seq, _, _ in got] == [1, 2, 3]
    assert _SendSpy.bodies[0] == "http.response.start"
    assert _SendSpy.bodies.count("http.response.body") >= 2  # the first ping, the events


@given(
    case_id=st.from_regex(r"[A-Za-z0-9._:-]{1,80}", fullmatch=True),
    recipients=st.lists(
        st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True), min_size=1, max_size=8
    ),
    envelope=st.binary(min_size=1, max_size=20_000),
)
def test_the_request_hash_is_the_hash_of_the_canonical_body(
    case_id: str, recipients: list[str], envelope: bytes
) -> None:
    """What a repeated Idempotency-Key is compared by: the envelope spliced into the
    canonical JSON gives the very bytes ``rfc8785`` gives for the whole body (a hub
    upgraded between a device's try and its retry answers the retry as a replay)."""
    import hashlib

    from hub_server.schemas import CaseCreate
    from hub_server.services.case_submission import _request_hash
    from sync.signed import canonical_json

    body = CaseCreate(
        case_id=case_id, recipients=recipients, envelope=base64.b64encode(envelope).decode()
    )
    expected = hashlib.sha256(canonical_json(body.model_dump())).hexdigest()
    assert _request_hash(body) == expected
