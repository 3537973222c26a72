"""The hospital's direct endpoint (``hospital.direct``, docs/disaster.md) on a real
uvicorn, with a real platform for the roster: enrolled devices only, a revoked device
refused once the roster says so, a rolled-back roster refused, the door's limits."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hospital.direct import DirectLimits, create_direct_app
from kyukyu.testing import serve_in_thread
from sync import HttpStatusError, SnapshotRollback
from sync.direct import DirectClient, DirectHospital
from sync.outbox import PendingCase
from sync.seal import seal_case
from tests.hospital._world import platform, signed_in, wait_for

BUNDLE = json.dumps(
    {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"resource": {"resourceType": "Composition", "status": "final"}}],
    }
).encode()


def _row(
    case_id: str, device_id: str, key: Ed25519PrivateKey, hospital: str, hpke: object
) -> PendingCase:
    sealed = seal_case(
        BUNDLE,
        case_id=case_id,
        device_id=device_id,
        device_key=key,
        recipients={hospital: hpke},  # type: ignore[dict-item]
    )
    return PendingCase(case_id, f"key-{case_id}", (hospital,), sealed, 0, 0.0)


def _report(service: Any, case_id: str) -> str | None:
    row = service.store.case(case_id)
    return None if row is None else row.direct_report


def _platform_case(plat: Any, case_id: str) -> tuple[int, list[tuple[Any, Any]]]:
    """(cases stored on the platform, (route, reported_by) of its case_created audits)."""
    from sqlmodel import func, select

    from hub_server.models import AuditEntry, Case

    plat.hub.state.chain_audit()
    with plat.hub.state.session() as s:
        count = s.exec(select(func.count()).select_from(Case).where(Case.id == case_id)).one()
        audited = s.exec(
            select(AuditEntry.details)
            .where(AuditEntry.subject == f"case:{case_id}")
            .where(AuditEntry.action == "case_created")
        ).all()
    details = [json.loads(d) for d in audited]
    return int(count), [(d.get("route"), d.get("reported_by")) for d in details]


def test_the_direct_endpoint_takes_enrolled_devices_only(tmp_path: Path) -> None:
    with platform(tmp_path) as plat:
        device = plat.new_device()
        site = plat.new_hospital(tmp_path, "直接病院", 35.68, 139.76)
        plat.add_user(site, "alice")
        plat.start(site)
        assert site.runtime is not None
        service = site.runtime.service
        service.direct.refresh_roster()
        old_roster = service.client.http.request_json("GET", "/v1/devices/roster")
        hpke = {h.id: h for h in device.client.hospital_directory(35.68, 139.76)}[site.id]
        limits = DirectLimits(unsigned_rate=1.0, unsigned_burst=3.0)
        url = plat.stack.enter_context(serve_in_thread(create_direct_app(service, limits)))
        target = DirectHospital(site.id, url, "")

        client = DirectClient(target, key=device.key, device_id=device.id, verify=False)
        plat.stack.callback(client.close)
        row = _row("direct-1", device.id, device.key, site.id, hpke.hpke_public_key)
        client.post(row)
        client.post(row)  # again: stored once
        stored = service.store.case("direct-1")
        assert stored is not None
        assert stored.route == "direct"
        assert stored.sender_department == "テスト市消防本部"  # the roster's word

        # The dashboard marks the card 直接受信 (the route it came by).
        with signed_in(site, "alice") as staff:
            page = staff.get("/").text
        card = re.search(r'<article[^>]*data-case-id="direct-1".*?</article>', page, re.S)
        assert card is not None
        assert re.search(r'<span class="route" data-route="direct"[^>]*>直接受信</span>', card[0])
        assert page.count('data-route="direct"') == 1

        # Handed in to the platform (the device may never come back): stored there once,
        # audited with its route; the device's own later post is the same one case.
        service.direct.report_direct_cases()
        assert wait_for(lambda: _report(service, "direct-1") in ("reported", "platform"))
        assert _platform_case(plat, "direct-1") == (1, [("direct", site.id)])
        again = device.client.post_case("direct-1", [site.id], row.envelope, idempotency_key="own")
        assert again["case_id"] == "direct-1"
        assert _platform_case(plat, "direct-1") == (1, [("direct", site.id)])

        # A device the roster does not know.
        stranger = Ed25519PrivateKey.generate()
        other = DirectClient(target, key=stranger, device_id="never-enrolled", verify=False)
        plat.stack.callback(other.close)
        with pytest.raises(HttpStatusError) as info:
            other.post(_row("direct-2", "never-enrolled", stranger, site.id, hpke.hpke_public_key))
        assert info.value.status == 403
        assert service.store.case("direct-2") is None

        # Revoked on the platform: refused on the direct route once the roster says so.
        plat.operator.request_json("POST", f"/v1/devices/{device.id}/revoke", body={})
        service.direct.refresh_roster()
        with pytest.raises(HttpStatusError) as info:
            client.post(_row("direct-3", device.id, device.key, site.id, hpke.hpke_public_key))
        assert info.value.status == 403
        # A direct case the platform refuses for good (its device is revoked now): the
        # refusal is recorded and the case is not offered again.
        late = seal_case(
            BUNDLE, case_id="direct-5", device_id=device.id, device_key=device.key,
            recipients={site.id: hpke.hpke_public_key},
        )  # fmt: skip
        service.store.add_case(
            case_id="direct-5", event_id=0, device_id=device.id, sealed_at=0,
            bundle=json.loads(BUNDLE), route="direct", envelope=base64.b64encode(late).decode(),
        )  # fmt: skip
        service.direct.report_direct_cases()
        assert wait_for(lambda: _report(service, "direct-5") == "refused:unknown_device")
        assert service.store.unreported_direct() == []
        assert _platform_case(plat, "direct-5") == (0, [])
        # Its answer, kept for the platform, is settled (the platform can never have the
        # case: a 404 forever), not offered every round nor holding newer answers up; a
        # direct case the platform may still get (not handed in yet) keeps its answer.
        service.store.add_case(
            case_id="direct-6", event_id=0, device_id=device.id, sealed_at=0,
            bundle=json.loads(BUNDLE), route="direct",
        )  # fmt: skip
        for case_id in ("direct-5", "direct-6"):
            service.store.set_answer(case_id, answer="accept", reason=None, by="a", sent=False)
        assert service.direct.send_unsent_answers() == 1
        assert [r.case_id for r in service.store.unsent_answers()] == ["direct-6"]
        assert service.direct.send_unsent_answers() == 0
        # The device's direct answer feed: its own cases' answers, in order, after a number.
        feed = service.store.direct_answers(device.id, 0)
        assert [(a["case_id"], a["answer"], a["reason"]) for a in feed] == [
            ("direct-5", "accept", None),
            ("direct-6", "accept", None),
        ]
        assert service.store.direct_answers(device.id, feed[0]["seq"]) == feed[1:]
        assert service.store.direct_answers("never-enrolled", 0) == []
        # The older roster (the device not yet revoked), correctly signed: refused.
        with pytest.raises(SnapshotRollback):
            service.direct.roster.accept(old_roster)
        with pytest.raises(HttpStatusError):
            client.post(_row("direct-4", device.id, device.key, site.id, hpke.hpke_public_key))

        # The door: a body over the limit, unsigned requests over their bucket.
        big = httpx.post(f"{url}/direct/v1/cases", content=b"x" * (300 * 1024), timeout=10)
        assert big.status_code == 413
        codes = [httpx.get(f"{url}/direct/v1/health", timeout=10).status_code for _ in range(6)]
        assert 429 in codes
