"""Hospitals' hybrid (X-Wing) keys on the platform (issue 27, phase B): registered,
enrolled and published later; carried by the hub-signed directory with each hospital's
key kinds; the device's sealing rule over that directory (v2 when every recipient is
hybrid, v1 otherwise, each hospital opening what it got); ``KYUKYU_HUB_REQUIRE_PQ``
refusing v1 and opaque bytes; the operator's list of hospitals still without one."""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlmodel import select

from hub_server.core.config import Settings
from hub_server.models import Hospital
from sync import BadHubSignature, SealedCase
from sync.client import parse_directory
from sync.envelope import V1, V2
from sync.seal import OpeningKeys, open_case, seal_case
from sync.signed import verify_document
from sync.signing import b64e
from sync.xwing import PUBLIC_KEY_LEN, XWingPrivateKey
from tests.hub_server._support import Hub, Signer, hub_in_process, new_key, pub

pytestmark = pytest.mark.anyio


class Site:
    """A hospital's private keys as the test keeps them."""

    def __init__(self, *, hybrid: bool) -> None:
        self.x25519 = X25519PrivateKey.generate()
        self.xwing = XWingPrivateKey.generate() if hybrid else None
        self.signing = new_key()
        self.id = ""
        self.signer: Signer | None = None

    def opening(self) -> OpeningKeys:
        return OpeningKeys(x25519=self.x25519, xwing=self.xwing)


def _xwing_b64(key: XWingPrivateKey) -> str:
    return b64e(key.public_key().to_bytes())


async def _register(hub: Hub, site: Site, name: str, lat: float = 35.68) -> Site:
    body: dict[str, Any] = {
        "name": name,
        "lat": lat,
        "lon": 139.76,
        "hpke_public_key": b64e(site.x25519.public_key().public_bytes_raw()),
        "signing_public_key": pub(site.signing),
    }
    if site.xwing is not None:
        body["xwing_public_key"] = _xwing_b64(site.xwing)
    r = await hub.call(hub.operator, "POST", "/v1/hospitals", body)
    assert r.status_code == 201, r.text
    site.id = r.json()["hospital_id"]
    site.signer = Signer(f"hospital:{site.id}", site.signing)
    return site


async def _directory(hub: Hub, device: Signer) -> dict[str, Any]:
    path = "/v1/hospitals/directory?lat=35.68&lon=139.76"
    r = await hub.call(device, "GET", path)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def _seal(device: Signer, case_id: str, recipients: dict[str, Any]) -> bytes:
    return seal_case(
        b'{"resourceType":"Bundle","type":"document"}',
        case_id=case_id,
        device_id=device.key_id.split(":", 1)[1],
        device_key=device.key,
        recipients=recipients,
    )


async def _post(hub: Hub, device: Signer, case_id: str, recipients: list[str], env: bytes) -> Any:
    body = {
        "case_id": case_id,
        "recipients": recipients,
        "envelope": base64.b64encode(env).decode(),
    }
    return await hub.call(
        device, "POST", "/v1/cases", body, headers={"Idempotency-Key": secrets.token_hex(8)}
    )


def _stored(hub: Hub, case_id: str) -> bytes:
    from hub_server.models import Case

    with hub.state.session() as s:
        row = s.get(Case, case_id)
        assert row is not None
        assert row.envelope is not None
        return bytes(row.envelope)


async def test_directory_carries_key_kinds_under_the_hub_signature(hub: Hub) -> None:
    device = await hub.enroll_device()
    old = await _register(hub, Site(hybrid=False), "旧鍵病院")
    pq = await _register(hub, Site(hybrid=True), "耐量子病院", lat=35.69)
    doc = await _directory(hub, device)
    body = verify_document(doc, "directory", hub.state.hub_key.public_key)
    entries = {h["id"]: h for h in body["hospitals"]}
    assert entries[old.id]["key_kinds"] == ["x25519"]
    assert entries[old.id]["xwing_public_key"] is None
    assert entries[pq.id]["key_kinds"] == ["x25519", "xwing"]
    assert pq.xwing is not None
    assert entries[pq.id]["xwing_public_key"] == _xwing_b64(pq.xwing)
    assert body["require_pq"] is False

    parsed = {h.id: h for h in parse_directory(body)}
    assert parsed[old.id].key_kinds == ("x25519",)
    assert parsed[pq.id].key_kinds == ("x25519", "xwing")
    assert parsed[pq.id].sealing_keys.xwing == pq.xwing.public_key()
    assert parse_directory(body).require_pq is False

    # A key kind added or a hybrid key dropped in transit: the signature says no.
    for change in ("kinds", "key"):
        forged = copy.deepcopy(doc)
        for h in forged["directory"]["hospitals"]:
            if change == "kinds" and h["id"] == old.id:
                h["key_kinds"] = ["x25519", "xwing"]
            if change == "key" and h["id"] == pq.id:
                h["xwing_public_key"] = None
        with pytest.raises(BadHubSignature):
            verify_document(forged, "directory", hub.state.hub_key.public_key)


async def test_a_hybrid_key_that_is_not_one_is_refused(hub: Hub) -> None:
    site = Site(hybrid=False)
    base = {
        "name": "病院",
        "lat": 35.0,
        "lon": 139.0,
        "hpke_public_key": b64e(site.x25519.public_key().public_bytes_raw()),
        "signing_public_key": pub(site.signing),
    }
    # The right length, but its ML-KEM part fails the modulus check.
    bad = b64e(b"\xff" * PUBLIC_KEY_LEN)
    r = await hub.call(hub.operator, "POST", "/v1/hospitals", {**base, "xwing_public_key": bad})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "bad_xwing_key"
    short = b64e(bytes(PUBLIC_KEY_LEN - 1))
    r = await hub.call(hub.operator, "POST", "/v1/hospitals", {**base, "xwing_public_key": short})
    assert r.status_code == 422
    with hub.state.session() as s:
        assert s.exec(select(Hospital)).all() == []


async def test_the_device_rule_over_a_mixed_fleet_and_each_hospital_opens_its_own(
    hub: Hub,
) -> None:
    """Sealing keys from the signed directory: a case to a hospital without a hybrid key is
    v1 for all its recipients; a case to hybrid hospitals only is v2; every recipient opens
    what the platform stored for it."""
    device = await hub.enroll_device()
    sites = [
        await _register(hub, Site(hybrid=True), "耐量子A"),
        await _register(hub, Site(hybrid=True), "耐量子B"),
        await _register(hub, Site(hybrid=False), "旧鍵C"),
    ]
    directory = {
        h.id: h
        for h in parse_directory(
            verify_document(
                await _directory(hub, device), "directory", hub.state.hub_key.public_key
            )
        )
    }
    plans = {"mixed": sites, "hybrid": sites[:2]}
    for case_id, recipients in plans.items():
        env = _seal(device, case_id, {s.id: directory[s.id].sealing_keys for s in recipients})
        r = await _post(hub, device, case_id, [s.id for s in recipients], env)
        assert r.status_code == 201, r.text
    assert SealedCase.from_bytes(_stored(hub, "mixed")).version == V1
    assert SealedCase.from_bytes(_stored(hub, "hybrid")).version == V2
    device_key = device.key.public_key()
    for case_id, recipients in plans.items():
        for s in recipients:
            opened = open_case(
                _stored(hub, case_id),
                hospital_id=s.id,
                hospital_key=s.opening(),
                device_key_for=lambda _d: device_key,
                expected_case_id=case_id,
            )
            assert json.loads(opened.payload)["type"] == "document"


async def test_a_hospital_publishes_its_hybrid_key_and_the_next_directory_has_it(
    hub: Hub,
) -> None:
    device = await hub.enroll_device()
    site = await _register(hub, Site(hybrid=False), "鍵更新病院")
    r = await hub.call(hub.operator, "GET", "/v1/hospitals?without_pq=true")
    assert [h["id"] for h in r.json()["hospitals"]] == [site.id]
    site.xwing = XWingPrivateKey.generate()
    r = await hub.call(
        site.signer, "PUT", "/v1/hospitals/me/keys", {"xwing_public_key": _xwing_b64(site.xwing)}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"hospital_id": site.id, "key_kinds": ["x25519", "xwing"]}
    # Only the hospital itself publishes: a device or the operator cannot.
    other = {"xwing_public_key": _xwing_b64(XWingPrivateKey.generate())}
    for caller in (device, hub.operator):
        r = await hub.call(caller, "PUT", "/v1/hospitals/me/keys", other)
        assert r.status_code == 403, r.text
    body = (await _directory(hub, device))["directory"]
    (entry,) = [h for h in body["hospitals"] if h["id"] == site.id]
    assert entry["key_kinds"] == ["x25519", "xwing"]
    r = await hub.call(hub.operator, "GET", "/v1/hospitals?without_pq=true")
    assert r.json() == {"require_pq": False, "hospitals": []}
    r = await hub.call(hub.operator, "GET", "/v1/audit")
    published = [e for e in r.json()["entries"] if e["action"] == "hospital_key_published"]
    assert [e["subject"] for e in published] == [f"hospital:{site.id}"]
    assert _xwing_b64(site.xwing)[:40] not in json.dumps(published)


@pytest.fixture
async def pq_hub(settings: Settings) -> AsyncIterator[Hub]:
    async with hub_in_process(settings.model_copy(update={"require_pq": True})) as served:
        yield served


async def test_require_pq_refuses_v1_and_opaque_bytes_with_one_code(pq_hub: Hub) -> None:
    hub = pq_hub
    device = await hub.enroll_device()
    pq = await _register(hub, Site(hybrid=True), "耐量子病院")
    old = await _register(hub, Site(hybrid=False), "旧鍵病院")
    body = verify_document(await _directory(hub, device), "directory", hub.state.hub_key.public_key)
    assert body["require_pq"] is True
    directory = parse_directory(body)
    assert directory.require_pq is True
    keys = {h.id: h.sealing_keys for h in directory}

    v1 = seal_case(
        b"{}",
        case_id="v1-case",
        device_id=device.key_id.split(":", 1)[1],
        device_key=device.key,
        recipients={pq.id: keys[pq.id]},
        version=V1,
    )
    for case_id, env in (("v1-case", v1), ("opaque", secrets.token_bytes(300))):
        r = await _post(hub, device, case_id, [pq.id], env)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "envelope_version_refused"
        assert "v2" in json.dumps(error, ensure_ascii=False)
    # The mixed case the device would have sealed v1 is refused too; v2 comes in.
    mixed = _seal(device, "mixed", {pq.id: keys[pq.id], old.id: keys[old.id]})
    r = await _post(hub, device, "mixed", [pq.id, old.id], mixed)
    assert r.json()["error"]["code"] == "envelope_version_refused"
    v2 = _seal(device, "v2-case", {pq.id: keys[pq.id]})
    assert (await _post(hub, device, "v2-case", [pq.id], v2)).status_code == 201

    r = await hub.call(hub.operator, "GET", "/v1/hospitals?without_pq=true")
    assert r.status_code == 200
    page = r.json()
    assert page["require_pq"] is True
    assert [(h["id"], h["key_kinds"]) for h in page["hospitals"]] == [(old.id, ["x25519"])]


async def test_enrollment_with_a_token_carries_the_hybrid_key(hub: Hub) -> None:
    """What ``kyukyu hospital init`` sends: the hybrid key beside the X25519 one."""
    device = await hub.enroll_device()
    r = await hub.call(hub.operator, "POST", "/v1/hospital-enrollment-tokens", {"name": "新病院"})
    site = Site(hybrid=True)
    assert site.xwing is not None
    body = {
        "token": r.json()["token"],
        "lat": 35.68,
        "lon": 139.76,
        "hpke_public_key": b64e(site.x25519.public_key().public_bytes_raw()),
        "xwing_public_key": _xwing_b64(site.xwing),
        "signing_public_key": pub(site.signing),
    }
    r = await hub.call(None, "POST", "/v1/hospitals/enroll", body)
    assert r.status_code == 201, r.text
    hid = r.json()["hospital_id"]
    (entry,) = (await _directory(hub, device))["directory"]["hospitals"]
    assert (entry["id"], entry["key_kinds"]) == (hid, ["x25519", "xwing"])
    assert entry["xwing_public_key"] == _xwing_b64(site.xwing)
