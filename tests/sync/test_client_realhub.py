"""PlatformClient against the real hub (hub_server.create_app under uvicorn on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import AuthError, Conflict, HttpStatusError, ResponseError
from sync.client import PlatformClient
from sync.receiver import HospitalClient
from sync.seal import seal_case
from sync.signing import public_key_to_b64
from tests.sync._asgi_bridge import SyncASGITransport
from tests.sync._net import World, serve
from tests.sync._realhub import RealHub, make_real_hub, populate


@dataclass
class Ctx:
    hub: RealHub
    url: str
    world: World
    client: PlatformClient
    transport: httpx.BaseTransport | None

    def device(self, **kwargs: Any) -> PlatformClient:
        kwargs.setdefault("device_id", self.world.device_id)
        return PlatformClient(
            self.url, key=self.world.device_key, transport=self.transport, **kwargs
        )


@contextmanager
def _base(kind: str, app: Any) -> Iterator[tuple[str, httpx.BaseTransport | None]]:
    if kind == "uvicorn":
        with serve(app) as url:
            yield url, None
    else:
        bridge = SyncASGITransport(app)
        yield "http://hub.test", bridge
        bridge.shutdown()


@pytest.fixture(params=["uvicorn", "asgi"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ctx]:
    """The real hub under uvicorn on loopback, or in process through httpx.ASGITransport."""
    hub = make_real_hub(tmp_path)
    world = World()
    with _base(request.param, hub.app) as (url, transport):
        populate(hub, url, world, 3, transport=transport)
        client = PlatformClient(
            url,
            key=world.device_key,
            device_id=world.device_id,
            hub_public_key=hub.state.hub_key.public_key,
            transport=transport,
        )
        yield Ctx(hub, url, world, client, transport)
        client.close()


def sealed(ctx: Ctx, case_id: str) -> bytes:
    return seal_case(
        b'{"resourceType":"Bundle"}',
        case_id=case_id,
        device_id=ctx.world.device_id,
        device_key=ctx.world.device_key,
        recipients=ctx.world.recipients(),
    )


def test_directory_is_signed_by_the_pinned_hub_key(ctx: Ctx) -> None:
    hospitals = ctx.client.hospital_directory(35.68, 139.76)
    assert [h.id for h in hospitals] == [h.id for h in ctx.world.hospitals]  # nearest first
    assert hospitals[0].distance_km == 0.0
    other = ctx.device(hub_public_key=Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ResponseError):
        other.hospital_directory(35.68, 139.76)
    other.close()


def test_fetch_hub_key_for_pinning(ctx: Ctx) -> None:
    fresh = ctx.device()
    pinned = fresh.fetch_hub_key()
    assert public_key_to_b64(pinned) == ctx.hub.state.hub_key.public_b64
    fresh.hub_public_key = pinned
    assert fresh.hospital_directory(35.68, 139.76)
    fresh.close()


def test_revocation_snapshot_and_challenge(ctx: Ctx) -> None:
    snap = ctx.client.revocation_snapshot()
    assert "version" in snap
    ch = ctx.client.create_challenge()
    assert ch["challenge_id"]
    assert ch["nonce"]


def test_post_case_is_idempotent(ctx: Ctx) -> None:
    ids = [h.id for h in ctx.world.hospitals]
    env = sealed(ctx, "rh-1")
    first = ctx.client.post_case("rh-1", ids, env, idempotency_key="key-1")
    again = ctx.client.post_case("rh-1", ids, env, idempotency_key="key-1")
    assert first == again
    # The same sealed case under another key: the one stored case (docs/disaster.md).
    assert ctx.client.post_case("rh-1", ids, env, idempotency_key="key-2") == first
    with pytest.raises(Conflict) as info:  # other bytes under the same case id
        ctx.client.post_case("rh-1", ids, sealed(ctx, "rh-1"), idempotency_key="key-4")
    assert info.value.hub_code == "case_exists"
    with pytest.raises(HttpStatusError) as bad:  # envelope and routing metadata disagree
        ctx.client.post_case("rh-2", ids, sealed(ctx, "rh-3"), idempotency_key="key-3")
    assert bad.value.status == 422
    # No hospital answered 受入可: a destination "by answer" is refused, by phone taken.
    with pytest.raises(Conflict) as refused:
        ctx.client.set_destination("rh-1", ids[0])
    assert refused.value.hub_code == "not_accepted"
    ctx.client.set_destination("rh-1", ids[0], via="phone")


@pytest.mark.parametrize("ctx", ["uvicorn"], indirect=True)  # SSE needs a streaming server
def test_answers_stream_back(ctx: Ctx) -> None:
    ids = [h.id for h in ctx.world.hospitals]
    ctx.client.post_case("rh-1", ids, sealed(ctx, "rh-1"), idempotency_key="key-1")
    h = ctx.world.hospitals[1]
    hc = HospitalClient(ctx.url, hospital_id=h.id, key=h.signing)
    hc.ack("rh-1")
    hc.answer("rh-1", "decline", "満床")
    hc.close()
    events = iter(ctx.client.device_events(0))
    ev = next(events)  # the ack: 病院に到着
    assert (ev.seq, ev.kind) == (1, "received")
    assert ev.data["case_id"] == "rh-1"
    assert ev.data["hospital_id"] == h.id
    ev = next(events)
    assert (ev.seq, ev.kind) == (2, "answer")
    assert ev.data["case_id"] == "rh-1"
    assert ev.data["answer"] == "decline"
    assert ev.data["reason"] == "満床"


def test_revoked_device_is_refused(ctx: Ctx) -> None:
    op = ctx.hub.operator(ctx.url, ctx.transport)
    op.request("POST", f"/v1/devices/{ctx.world.device_id}/revoke", body={})
    op.close()
    with pytest.raises(AuthError) as info:
        ctx.client.post_case("rv-1", [ctx.world.hospitals[0].id], b"x", idempotency_key="k")
    assert info.value.status in (401, 403)
