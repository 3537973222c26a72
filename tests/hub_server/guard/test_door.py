"""Issue 10, at the door: strict header numbers, 413 for chunked bodies, envelopes checked.

Each test failed before the fix (500 on "²", 400 for a chunked body, 201 for a forged
envelope) and runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_server.api.deps import ascii_decimal
from sync.seal import seal_case
from tests.hub_server._support import Hub, Signer, new_key

pytestmark = pytest.mark.anyio


async def _world(hub: Hub) -> tuple[Signer, str]:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    return device, hid


@pytest.mark.parametrize("stamp", ["²", "１２３", "٣٣٣", "99999999999999999999", "", " 1", "-1"])
async def test_odd_timestamps_are_malformed_signatures_not_500(hub: Hub, stamp: str) -> None:
    device, _ = await _world(hub)
    headers = device.headers("GET", "/v1/devices/me")
    headers["X-Kyukyu-Timestamp"] = stamp
    r = await hub.client.get(
        "/v1/devices/me", headers={k: v.encode("utf-8") for k, v in headers.items()}
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] in {"malformed_signature", "stale_request"}


@pytest.mark.parametrize("last", ["²", "99999999999999999999", "4611686018427387905", "1e3"])
async def test_odd_last_event_ids_are_refused_not_500(hub: Hub, last: str) -> None:
    _, hs = await hub.register_hospital()
    path = "/v1/hospitals/me/events"
    headers = {**hs.headers("GET", path), "Last-Event-ID": last}
    r = await hub.client.get(path, headers={k: v.encode("utf-8") for k, v in headers.items()})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in {"invalid_last_event_id", "invalid_request"}


async def test_a_plain_last_event_id_still_resumes(hub: Hub) -> None:
    _, hs = await hub.register_hospital()
    path = "/v1/hospitals/me/events"
    headers = {**hs.headers("GET", path), "Last-Event-ID": " 12 "}
    async with hub.client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=30))
def test_ascii_decimal_takes_only_ascii_digits(text: str) -> None:
    got = ascii_decimal(text, max_digits=12)
    if got is None:
        assert not (text.isascii() and text.isdigit() and 0 < len(text) <= 12)
    else:
        assert text.isascii()
        assert text.isdigit()
        assert got == int(text)


async def test_chunked_body_over_the_limit_is_413(hub: Hub) -> None:
    limit = hub.state.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096

    r = await hub.client.post(
        "/v1/devices/enroll", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"


async def test_chunked_signed_body_over_the_limit_is_413(hub: Hub) -> None:
    device, hid = await _world(hub)
    body = b'{"case_id":"c","recipients":["%s"],"envelope":"' % hid.encode()
    body += b"A" * hub.state.settings.max_body_bytes + b'"}'
    headers = device.headers("POST", "/v1/cases", body)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    r = await hub.client.post(
        "/v1/cases",
        content=chunks(),
        headers={**headers, "Idempotency-Key": "k", "content-type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"


def _sealed(case_id: str, device_id: str, key: object, recipients: list[str]) -> bytes:
    pubs = {rid: X25519PrivateKey.generate().public_key() for rid in recipients}
    return seal_case(
        b'{"resourceType":"Bundle"}',
        case_id=case_id,
        device_id=device_id,
        device_key=key,  # type: ignore[arg-type]
        recipients=pubs,
    )


async def test_a_sealed_case_of_the_caller_is_stored(hub: Hub) -> None:
    device, hid = await _world(hub)
    env = _sealed("c-ok", device.key_id.removeprefix("device:"), device.key, [hid])
    r = await hub.post_case(device, [hid], case_id="c-ok", envelope=env)
    assert r.status_code == 201, r.text


async def test_an_envelope_naming_another_device_is_refused(hub: Hub) -> None:
    device, hid = await _world(hub)
    other = await hub.enroll_device(name="救急2")
    # Sealed and signed by the other device, posted by this one.
    env = _sealed("c-1", other.key_id.removeprefix("device:"), other.key, [hid])
    r = await hub.post_case(device, [hid], case_id="c-1", envelope=env)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "envelope_not_yours"


async def test_an_envelope_with_a_forged_signature_is_refused(hub: Hub) -> None:
    device, hid = await _world(hub)
    env = _sealed("c-2", device.key_id.removeprefix("device:"), new_key(), [hid])
    r = await hub.post_case(device, [hid], case_id="c-2", envelope=env)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "bad_envelope_signature"
    flipped = bytearray(_sealed("c-3", device.key_id.removeprefix("device:"), device.key, [hid]))
    flipped[-70] ^= 1  # a payload byte: the signature no longer covers these bytes
    r = await hub.post_case(device, [hid], case_id="c-3", envelope=bytes(flipped))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "bad_envelope_signature"
    with hub.state.session() as session:
        from hub_server.models import Case

        assert session.get(Case, "c-2") is None
        assert session.get(Case, "c-3") is None


async def test_opaque_envelopes_are_refused_where_not_accepted(hub: Hub) -> None:
    device, hid = await _world(hub)
    hub.state.settings = hub.state.settings.with_(opaque_envelopes=False)
    r = await hub.post_case(device, [hid], envelope=secrets.token_bytes(64))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "not_sealed"
    env = _sealed("c-4", device.key_id.removeprefix("device:"), device.key, [hid])
    r = await hub.post_case(device, [hid], case_id="c-4", envelope=env)
    assert r.status_code == 201, r.text
    assert base64.b64encode(env)  # stored as sent (checked by the other suites)


async def test_signed_requests_are_not_charged_to_the_unsigned_bucket(hub: Hub) -> None:
    """Devices behind one address (a fire department's NAT) are limited per key id, not
    by the unsigned bucket of their address."""
    device, _ = await _world(hub)
    bucket = hub.state.rates.unsigned
    bucket.rate, bucket.burst = 0.01, 2.0
    bucket._buckets.clear()
    for _ in range(6):
        r = await hub.call(device, "GET", "/v1/devices/me")
        assert r.status_code == 200, r.text
    for _ in range(3):  # a route with a path parameter (matched by its pattern)
        r = await hub.call(device, "GET", "/v1/cases/nope")
        assert r.status_code == 404, r.text
    codes = [(await hub.client.get("/v1/health")).status_code for _ in range(3)]
    assert codes[:2] == [200, 200]
    assert codes[2] == 429
    # A forged signature header on an unsigned route does not get past the bucket.
    r = await hub.client.get("/v1/health", headers={"X-Kyukyu-Signature": "x"})
    assert r.status_code == 429
