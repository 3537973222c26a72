"""``KYUKYU_HUB_REQUIRE_PQ`` and what else carries a sealed envelope (issue 27): a closure
(中止 / 不搬送, its reason patient data) is refused unless v2, with the case post's one
code; it may leave out the case's recipients without a hybrid key (the crew phones them)
but not one that has a hybrid key (a stale directory: the device seals it again); a case
a hospital hands in after receiving it directly is kept whatever its version (the
platform's one record of a case that already happened; docs/envelope.md, "Policy")."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlmodel import select

from hub_server.core.config import Settings
from hub_server.models import AuditEntry, Event
from sync.closure import open_closure, seal_closure
from sync.envelope import V1, V2
from sync.seal import OpeningKeys, SealingKeys, seal_case
from sync.signing import b64e
from sync.xwing import XWingPrivateKey
from tests.hub_server._support import Hub, Signer, hub_in_process, new_key, pub, sse_events

pytestmark = pytest.mark.anyio

REFUSED = "envelope_version_refused"


class Site:
    def __init__(self, *, hybrid: bool) -> None:
        self.x25519 = X25519PrivateKey.generate()
        self.xwing = XWingPrivateKey.generate() if hybrid else None
        self.signing = new_key()
        self.id = ""
        self.signer: Signer | None = None

    def sealing(self) -> SealingKeys:
        xwing = self.xwing.public_key() if self.xwing is not None else None
        return SealingKeys(x25519=self.x25519.public_key(), xwing=xwing)

    def opening(self) -> OpeningKeys:
        return OpeningKeys(x25519=self.x25519, xwing=self.xwing)


async def _register(hub: Hub, site: Site, name: str) -> Site:
    body: dict[str, Any] = {
        "name": name,
        "lat": 35.68,
        "lon": 139.76,
        "hpke_public_key": b64e(site.x25519.public_key().public_bytes_raw()),
        "signing_public_key": pub(site.signing),
    }
    if site.xwing is not None:
        body["xwing_public_key"] = b64e(site.xwing.public_key().to_bytes())
    r = await hub.call(hub.operator, "POST", "/v1/hospitals", body)
    assert r.status_code == 201, r.text
    site.id = r.json()["hospital_id"]
    site.signer = Signer(f"hospital:{site.id}", site.signing)
    return site


def _device_id(device: Signer) -> str:
    return device.key_id.removeprefix("device:")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def _post_v1_case(hub: Hub, device: Signer, case_id: str, sites: list[Site]) -> None:
    """A case sealed v1 (to all of ``sites``) while the platform still took v1."""
    raw = seal_case(
        b'{"resourceType":"Bundle"}',
        case_id=case_id,
        device_id=_device_id(device),
        device_key=device.key,
        recipients={s.id: s.sealing() for s in sites},
        version=V1,
    )
    body = {"case_id": case_id, "recipients": [s.id for s in sites], "envelope": _b64(raw)}
    r = await hub.call(
        device, "POST", "/v1/cases", body, headers={"Idempotency-Key": secrets.token_hex(8)}
    )
    assert r.status_code == 201, r.text


def _closure(device: Signer, case_id: str, sites: list[Site], version: int | None) -> bytes:
    return seal_closure(
        case_id=case_id,
        reason="現場死亡確認",
        closed_at=datetime.now(UTC),
        device_id=_device_id(device),
        device_key=device.key,
        recipients={s.id: s.sealing() for s in sites},
        version=version,
    )


async def _close(hub: Hub, device: Signer, case_id: str, sites: list[Site], raw: bytes) -> Any:
    body = {"recipients": [s.id for s in sites], "envelope": _b64(raw)}
    return await hub.call(device, "POST", f"/v1/cases/{case_id}/closure", body)


@pytest.fixture
async def mixed(settings: Settings) -> AsyncIterator[tuple[Hub, Signer, list[Site]]]:
    """A hub with two hybrid hospitals and one without, a case sealed v1 to all three
    (``pq-case``) while v1 was taken, then the operator switches ``require_pq`` on."""
    async with hub_in_process(settings) as hub:
        device = await hub.enroll_device()
        sites = [
            await _register(hub, Site(hybrid=True), "耐量子病院A"),
            await _register(hub, Site(hybrid=True), "耐量子病院B"),
            await _register(hub, Site(hybrid=False), "旧鍵病院"),
        ]
        await _post_v1_case(hub, device, "pq-case", sites)
        hub.state.settings = hub.state.settings.with_(require_pq=True)
        yield hub, device, sites


async def test_a_v1_or_opaque_closure_is_refused_with_the_case_posts_code(
    mixed: tuple[Hub, Signer, list[Site]],
) -> None:
    hub, device, sites = mixed
    hybrid = sites[:2]
    for raw in (_closure(device, "pq-case", hybrid, V1), secrets.token_bytes(300)):
        r = await _close(hub, device, "pq-case", hybrid, raw)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == REFUSED
        assert "v2" in error["message_ja"]
    # Nothing was relayed: the closure can still come (v2).
    r = await _close(hub, device, "pq-case", hybrid, _closure(device, "pq-case", hybrid, V2))
    assert r.status_code == 201, r.text


async def test_a_v2_closure_goes_to_the_hybrid_hospitals_and_each_opens_it(
    mixed: tuple[Hub, Signer, list[Site]],
) -> None:
    hub, device, sites = mixed
    hybrid, old = sites[:2], sites[2]
    raw = _closure(device, "pq-case", hybrid, V2)
    r = await _close(hub, device, "pq-case", hybrid, raw)
    assert r.status_code == 201, r.text
    assert r.json()["recipients"] == sorted(s.id for s in hybrid)
    for site in hybrid:
        assert site.signer is not None
        path = "/v1/hospitals/me/events?after=1"  # 1 is the case
        async with hub.client.stream("GET", path, headers=site.signer.headers("GET", path)) as s:
            [(_, kind, data)] = await asyncio.wait_for(sse_events(s, 1), 10)
        assert kind == "closure"
        closure = open_closure(
            base64.b64decode(data["envelope"]),
            hospital_id=site.id,
            hospital_key=site.opening(),
            device_key_for=lambda _d: device.key.public_key(),
            expected_case_id="pq-case",
        )
        assert closure.reason == "現場死亡確認"
    # The hospital without a hybrid key has its case and nothing after it (phoned).
    hub.state.chain_audit()
    with hub.state.session() as s:
        told = s.exec(select(Event.recipient).where(Event.kind == "closure")).all()
        details = s.exec(select(AuditEntry.details).where(AuditEntry.action == "case_closed")).all()
    assert sorted(told) == sorted(f"hospital:{h.id}" for h in hybrid)
    assert f"hospital:{old.id}" not in told
    assert [json.loads(d) for d in details] == [{"recipients": 2}]


async def test_leaving_out_a_hybrid_hospital_is_a_stale_directory(
    mixed: tuple[Hub, Signer, list[Site]],
) -> None:
    hub, device, sites = mixed
    only_a = sites[:1]
    r = await _close(hub, device, "pq-case", only_a, _closure(device, "pq-case", only_a, V2))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == REFUSED  # the device seals it again from a fresh list
    # Another case's hospital, or the same one twice, is not a subset of the case's.
    stranger = await _register(hub, Site(hybrid=True), "別の病院")
    extra = [*sites[:2], stranger]
    r = await _close(hub, device, "pq-case", extra, _closure(device, "pq-case", extra, V2))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "not_the_recipients"
    # Not this device's case: 404 before anything about its recipients is said.
    other = await hub.enroll_device()
    hybrid = sites[:2]
    r = await _close(hub, other, "pq-case", hybrid, _closure(other, "pq-case", hybrid, V2))
    assert r.status_code == 404, r.text


async def test_without_the_policy_a_closure_still_goes_to_every_recipient(
    mixed: tuple[Hub, Signer, list[Site]],
) -> None:
    hub, device, sites = mixed
    hub.state.settings = hub.state.settings.with_(require_pq=False)
    hybrid = sites[:2]
    r = await _close(hub, device, "pq-case", hybrid, _closure(device, "pq-case", hybrid, V2))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "not_the_recipients"
    r = await _close(hub, device, "pq-case", sites, _closure(device, "pq-case", sites, None))
    assert r.status_code == 201, r.text


async def test_a_directly_received_v1_case_handed_in_is_kept_under_the_policy(
    mixed: tuple[Hub, Signer, list[Site]],
) -> None:
    """The hospital holds the case already (the device gave it directly while the
    platform was out); refusing it would lose the platform's record of a case that
    happened (its audit, the other recipients' copy, the destination and the closure).
    The device's own post of those bytes then answers the stored case."""
    hub, device, sites = mixed

    def v1(case_id: str, payload: bytes) -> bytes:
        return seal_case(
            payload,
            case_id=case_id,
            device_id=_device_id(device),
            device_key=device.key,
            recipients={s.id: s.sealing() for s in sites},
            version=V1,
        )

    async def post(case_id: str, raw: bytes) -> Any:
        body = {"case_id": case_id, "recipients": [s.id for s in sites], "envelope": _b64(raw)}
        headers = {"Idempotency-Key": secrets.token_hex(8)}
        return await hub.call(device, "POST", "/v1/cases", body, headers=headers)

    raw = v1("direct-v1", b'{"resourceType":"Bundle"}')
    old = sites[2]
    assert old.signer is not None
    body = {"case_id": "direct-v1", "device_id": _device_id(device), "envelope": _b64(raw)}
    r = await hub.call(old.signer, "POST", "/v1/hospitals/me/direct-receipts", body)
    assert r.status_code == 201, r.text
    # The device comes back and posts those very bytes itself: the stored case, not a
    # refusal (which would tell the crew the case reached nobody).
    r = await post("direct-v1", raw)
    assert r.status_code == 200, r.text
    assert r.headers.get("idempotent-replayed") == "true"
    assert r.json()["case_id"] == "direct-v1"
    # Other bytes under that case id (v1), or another v1 case, are refused as ever.
    for case_id, payload in (
        ("direct-v1", b'{"resourceType":"Bundle","x":1}'),
        ("direct-v1-own", b'{"resourceType":"Bundle"}'),
    ):
        r = await post(case_id, v1(case_id, payload))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == REFUSED
