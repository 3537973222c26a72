"""Issue 10: every identity can be revoked (audited), its open streams end within 1 s,
and one identity holds at most ``max_streams_per_identity`` streams (SQLite and
PostgreSQL, in process; across processes: test_server.py)."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from sqlmodel import col, select

from hub_server.models import AuditEntry
from tests.hub_server._support import Hub, make_operator

pytestmark = pytest.mark.anyio


async def _until_revoked(response: httpx.Response, started: float) -> float:
    """Read the stream until ``event: revoked``; the seconds since ``started``."""
    async for line in response.aiter_lines():
        if line == "event: revoked":
            return time.monotonic() - started
    raise AssertionError("the stream ended without event: revoked")


def _actions(hub: Hub) -> list[tuple[str, str]]:
    with hub.state.session() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [(r.action, r.subject) for r in rows]


async def test_revoked_hospital_stream_ends_within_a_second(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, hs = await hub.register_hospital()
    path = "/v1/hospitals/me/events"
    async with hub.client.stream("GET", path, headers=hs.headers("GET", path)) as stream:
        assert stream.status_code == 200
        for _ in range(3):  # events keep flowing meanwhile
            assert (await hub.post_case(device, [hid])).status_code == 201
        started = time.monotonic()
        r = await hub.call(hub.operator, "POST", f"/v1/hospitals/{hid}/revoke", {"reason": "盗難"})
        assert r.status_code == 200, r.text
        assert r.json() == {"key_id": f"hospital:{hid}", "kind": "hospital", "revoked": True}
        with anyio.fail_after(2):
            assert await _until_revoked(stream, started) < 1.0
    r = await hub.call(hs, "GET", path)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "revoked"
    assert ("hospital_revoked", f"hospital:{hid}") in _actions(hub)
    # Gone from the directory as well.
    r = await hub.call(hub.operator, "GET", "/v1/hospitals/directory?lat=35.6&lon=139.7")
    assert hid not in {h["id"] for h in r.json()["directory"]["hospitals"]}


async def test_revoked_device_stream_ends_within_a_second(hub: Hub) -> None:
    device = await hub.enroll_device()
    path = "/v1/devices/me/events"
    async with hub.client.stream("GET", path, headers=device.headers("GET", path)) as stream:
        assert stream.status_code == 200
        device_id = device.key_id.removeprefix("device:")
        started = time.monotonic()
        r = await hub.call(hub.operator, "POST", f"/v1/devices/{device_id}/revoke")
        assert r.status_code == 200, r.text
        with anyio.fail_after(2):
            assert await _until_revoked(stream, started) < 1.0
    assert (await hub.call(device, "GET", "/v1/devices/me")).status_code == 403


@pytest.mark.parametrize("role", ["operator", "technician"])
async def test_operators_and_technicians_can_be_revoked(hub: Hub, role: str) -> None:
    other = make_operator(hub.state, role, "東京消防庁" if role == "technician" else None)
    ident = other.key_id.removeprefix("operator:")
    path = "/v1/hospitals/directory?lat=35.6&lon=139.7"
    assert (await hub.call(other, "GET", path)).status_code == 200
    r = await hub.call(hub.operator, "POST", f"/v1/operators/{ident}/revoke")
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == role
    r = await hub.call(other, "GET", path)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "revoked"
    assert (f"{role}_revoked", other.key_id) in _actions(hub)


async def test_revocation_needs_an_operator_and_not_oneself(hub: Hub) -> None:
    hid, _ = await hub.register_hospital()
    tech = make_operator(hub.state, "technician", "東京消防庁")
    device = await hub.enroll_device()
    for signer in (tech, device):
        r = await hub.call(signer, "POST", f"/v1/hospitals/{hid}/revoke")
        assert r.status_code == 403, r.text
    me = hub.operator.key_id.removeprefix("operator:")
    r = await hub.call(hub.operator, "POST", f"/v1/operators/{me}/revoke")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "cannot_revoke_self"
    r = await hub.call(hub.operator, "POST", "/v1/hospitals/nope/revoke")
    assert r.status_code == 404


async def test_a_technician_revokes_only_its_own_fire_departments_devices(hub: Hub) -> None:
    device = await hub.enroll_device(fire_department="大阪市消防局")
    tech = make_operator(hub.state, "technician", "東京消防庁")
    device_id = device.key_id.removeprefix("device:")
    r = await hub.call(tech, "POST", f"/v1/devices/{device_id}/revoke")
    assert r.status_code == 404
    assert (await hub.call(device, "GET", "/v1/devices/me")).status_code == 200


async def test_streams_per_identity_are_capped(hub: Hub) -> None:
    _, hs = await hub.register_hospital()
    limit = hub.state.settings.max_streams_per_identity
    path = "/v1/hospitals/me/events"
    streams = []
    try:
        for _ in range(limit):
            cm = hub.client.stream("GET", path, headers=hs.headers("GET", path))
            r = await cm.__aenter__()
            streams.append(cm)
            assert r.status_code == 200
            async for line in r.aiter_lines():  # wait until it is subscribed
                if line == "":
                    break
        r = await hub.call(hs, "GET", path)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_streams"
        assert int(r.headers["Retry-After"]) >= 1
        # Another hospital is not affected.
        _, other = await hub.register_hospital("別の病院")
        async with hub.client.stream("GET", path, headers=other.headers("GET", path)) as ok:
            assert ok.status_code == 200
    finally:
        for cm in streams:
            await cm.__aexit__(None, None, None)


async def test_a_revocation_heard_before_the_subscription_ends_the_new_stream(hub: Hub) -> None:
    """The gap between a stream's authentication and its subscription: the revocation
    broadcast (another process's NOTIFY, or the SQLite watch) arrives in between. The
    database still says 'not revoked' when the stream authenticates here; the bus
    remembers the broadcast, and the new stream ends at once with ``event: revoked``."""
    hid, hs = await hub.register_hospital()
    other, os_ = await hub.register_hospital(name="別")
    hub.state.bus.revoke(f"hospital:{hid}")  # heard, not (yet) in this database
    path = "/v1/hospitals/me/events"
    started = time.monotonic()
    async with hub.client.stream("GET", path, headers=hs.headers("GET", path)) as stream:
        assert stream.status_code == 200
        with anyio.fail_after(2):
            await _until_revoked(stream, started)
    # Nobody else is affected.
    async with hub.client.stream("GET", path, headers=os_.headers("GET", path)) as stream:
        assert stream.status_code == 200
        device = await hub.enroll_device()
        assert (await hub.post_case(device, [other])).status_code == 201
        with anyio.fail_after(2):
            async for line in stream.aiter_lines():
                if line.startswith("data:") and '"case_id"' in line:
                    break
