"""Signed requests and the authorization matrix."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from hub_server.core.db import utcnow
from hub_server.models import EnrollmentToken
from tests.hub_server._support import Hub, Signer, make_operator, new_key, pub

pytestmark = pytest.mark.anyio


async def test_unsigned_bad_and_unknown_key_are_401(hub: Hub) -> None:
    r = await hub.client.get("/v1/devices/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_signature"
    stranger = Signer("device:doesnotexist", new_key())
    r = await hub.call(stranger, "GET", "/v1/devices/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unknown_key"
    device = await hub.enroll_device()
    forged = Signer(device.key_id, new_key())
    r = await hub.call(forged, "GET", "/v1/devices/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "bad_signature"


async def test_replayed_request_is_refused(hub: Hub) -> None:
    device = await hub.enroll_device()
    headers = device.headers("GET", "/v1/devices/me")
    assert (await hub.client.get("/v1/devices/me", headers=headers)).status_code == 200
    again = await hub.client.get("/v1/devices/me", headers=headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_request"


async def test_stale_request_is_refused(hub: Hub) -> None:
    device = await hub.enroll_device()
    r = await hub.call(device, "GET", "/v1/devices/me", now=time.time() - 3600)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "stale_request"
    r = await hub.call(device, "GET", "/v1/devices/me", now=time.time() + 3600)
    assert r.status_code == 401


async def test_signature_covers_body_and_query(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    body = b'{"case_id":"x","recipients":["%s"],"envelope":"AAAA"}' % hid.encode()
    headers = device.headers("POST", "/v1/cases", body)
    tampered = body.replace(b'"x"', b'"y"')
    r = await hub.client.post(
        "/v1/cases",
        content=tampered,
        headers={**headers, "Idempotency-Key": "t", "content-type": "application/json"},
    )
    assert r.status_code == 401
    h = device.headers("GET", "/v1/hospitals/directory?lat=35&lon=139")
    r = await hub.client.get("/v1/hospitals/directory?lat=35&lon=140", headers=h)
    assert r.status_code == 401


async def test_revoked_device_is_refused_everything(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    device_id = device.key_id.split(":")[1]
    r = await hub.call(hub.operator, "POST", f"/v1/devices/{device_id}/revoke")
    assert r.status_code == 200
    assert r.json()["revoked"] is True
    for method, path, body in (
        ("GET", "/v1/devices/me", None),
        ("POST", "/v1/challenges", None),
        ("GET", "/v1/devices/me/events", None),
    ):
        r = await hub.call(device, method, path, body)
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "revoked"
    r = await hub.post_case(device, [hid])
    assert r.status_code == 403


async def test_enrollment_token_is_single_use_and_expires(hub: Hub) -> None:
    r = await hub.call(
        hub.operator, "POST", "/v1/enrollment-tokens", {"fire_department": "横浜市消防局"}
    )
    token = r.json()["token"]
    first = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": token, "public_key": pub(new_key()), "name": "a"},
    )
    assert first.status_code == 201
    assert first.json()["fire_department"] == "横浜市消防局"
    used = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": token, "public_key": pub(new_key()), "name": "b"},
    )
    assert used.status_code == 401
    assert used.json()["error"]["code"] == "invalid_enrollment_token"
    r = await hub.call(
        hub.operator, "POST", "/v1/enrollment-tokens", {"fire_department": "横浜市消防局"}
    )
    token2 = r.json()["token"]
    with hub.state.session() as s:  # age the token past its lifetime
        for row in s.exec(__import__("sqlmodel").select(EnrollmentToken)).all():
            row.expires_at = utcnow() - timedelta(seconds=1)
            s.add(row)
        s.commit()
    expired = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": token2, "public_key": pub(new_key()), "name": "c"},
    )
    assert expired.status_code == 401
    bogus = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": "nope", "public_key": pub(new_key()), "name": "d"},
    )
    assert bogus.status_code == 401


async def test_one_token_mechanism_keeps_the_kinds_apart(hub: Hub) -> None:
    """A hospital token enrolls one hospital once; a device token is not a hospital token
    nor the reverse; each refusal names who hands out a new token."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from sync.signing import b64e

    def hospital_body(token: str) -> dict[str, object]:
        hpke = X25519PrivateKey.generate().public_key().public_bytes_raw()
        return {
            "token": token,
            "lat": 35.0,
            "lon": 139.0,
            "hpke_public_key": b64e(hpke),
            "signing_public_key": pub(new_key()),
        }

    r = await hub.call(hub.operator, "POST", "/v1/hospital-enrollment-tokens", {"name": "川崎病院"})
    hospital_token = r.json()["token"]
    r = await hub.call(
        hub.operator, "POST", "/v1/enrollment-tokens", {"fire_department": "川崎市消防局"}
    )
    device_token = r.json()["token"]
    as_device = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": hospital_token, "public_key": pub(new_key()), "name": "x"},
    )
    assert as_device.status_code == 401
    assert "技術担当者" in as_device.json()["error"]["message_ja"]
    as_hospital = await hub.call(None, "POST", "/v1/hospitals/enroll", hospital_body(device_token))
    assert as_hospital.status_code == 401
    assert as_hospital.json()["error"]["code"] == "invalid_enrollment_token"
    assert "運用者" in as_hospital.json()["error"]["message_ja"]
    first = await hub.call(None, "POST", "/v1/hospitals/enroll", hospital_body(hospital_token))
    assert first.status_code == 201
    assert first.json()["name"] == "川崎病院"
    again = await hub.call(None, "POST", "/v1/hospitals/enroll", hospital_body(hospital_token))
    assert again.status_code == 401
    device = await hub.call(
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": device_token, "public_key": pub(new_key()), "name": "y"},
    )
    assert device.status_code == 201  # the refused tries did not use it up
    assert device.json()["fire_department"] == "川崎市消防局"


async def test_tokens_are_stored_hashed(hub: Hub) -> None:
    r = await hub.call(
        hub.operator, "POST", "/v1/enrollment-tokens", {"fire_department": "札幌市消防局"}
    )
    token = r.json()["token"]
    with hub.state.session() as s:
        rows = s.exec(__import__("sqlmodel").select(EnrollmentToken)).all()
    assert rows
    assert all(token not in (row.token_hash,) for row in rows)


async def test_authorization_matrix(hub: Hub) -> None:
    device = await hub.enroll_device("東京消防庁")
    hid, hospital = await hub.register_hospital()
    technician = make_operator(hub.state, "technician", "東京消防庁")
    other_tech = make_operator(hub.state, "technician", "大阪市消防局")
    device_id = device.key_id.split(":")[1]
    new_hospital = {
        "name": "x",
        "lat": 35.0,
        "lon": 139.0,
        "hpke_public_key": pub(new_key()),
        "signing_public_key": pub(new_key()),
    }
    matrix = [
        # (caller, method, path, body, expected status)
        (device, "GET", "/v1/audit", None, 403),
        (hospital, "GET", "/v1/audit", None, 403),
        (technician, "GET", "/v1/audit", None, 403),
        (hub.operator, "GET", "/v1/audit", None, 200),
        (device, "POST", "/v1/hospitals", new_hospital, 403),
        (technician, "POST", "/v1/hospitals", new_hospital, 403),
        (hospital, "POST", "/v1/enrollment-tokens", {"fire_department": "東京消防庁"}, 403),
        (device, "POST", "/v1/enrollment-tokens", {"fire_department": "東京消防庁"}, 403),
        (technician, "POST", "/v1/enrollment-tokens", {"fire_department": "東京消防庁"}, 201),
        (technician, "POST", "/v1/enrollment-tokens", {"fire_department": "大阪市消防局"}, 403),
        (hospital, "GET", "/v1/hospitals/directory?lat=35&lon=139", None, 403),
        (device, "GET", "/v1/hospitals/directory?lat=35&lon=139", None, 200),
        (hospital, "POST", "/v1/challenges", None, 403),
        (hospital, "GET", "/v1/devices/me/events", None, 403),
        (device, "GET", "/v1/hospitals/me/events", None, 403),
        (device, "POST", "/v1/revocation/crl", {"crl": "AAAA"}, 403),
        (hospital, "GET", "/v1/revocation/snapshot", None, 403),
        (device, "GET", "/v1/revocation/snapshot", None, 200),
        (
            device,
            "POST",
            "/v1/operators",
            {"name": "x", "role": "operator", "public_key": pub(new_key())},
            403,
        ),
        (
            technician,
            "POST",
            "/v1/operators",
            {"name": "x", "role": "operator", "public_key": pub(new_key())},
            403,
        ),
        (hospital, "POST", f"/v1/devices/{device_id}/revoke", None, 403),
        (device, "POST", f"/v1/devices/{device_id}/revoke", None, 403),
        (other_tech, "POST", f"/v1/devices/{device_id}/revoke", None, 404),
        (technician, "POST", f"/v1/devices/{device_id}/revoke", None, 200),
    ]
    for caller, method, path, body, expected in matrix:
        r = await hub.call(caller, method, path, body)
        assert r.status_code == expected, (caller.key_id, method, path, r.status_code, r.text)
    _ = hid


async def test_directory_is_signed_and_nearest_first(hub: Hub) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sync.signed import canonical_json
    from sync.signing import b64d

    device = await hub.enroll_device()
    far, _ = await hub.register_hospital("札幌", 43.06, 141.35)
    near, _ = await hub.register_hospital("東京", 35.68, 139.76)
    mid, _ = await hub.register_hospital("名古屋", 35.18, 136.90)
    r = await hub.call(device, "GET", "/v1/hospitals/directory?lat=35.6&lon=139.7")
    assert r.status_code == 200
    doc = r.json()
    assert [h["id"] for h in doc["directory"]["hospitals"]] == [near, mid, far]
    key = (await hub.client.get("/v1/hub-key")).json()
    assert key["key_id"] == doc["key_id"]
    Ed25519PublicKey.from_public_bytes(b64d(key["public_key"])).verify(
        b64d(doc["signature"]), canonical_json(doc["directory"])
    )
