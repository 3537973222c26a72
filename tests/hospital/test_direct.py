"""The hospital's direct endpoint (``hospital.direct``, docs/disaster.md) on a real
uvicorn, with a real platform for the roster: enrolled devices only, a revoked device
refused once the roster says so, a rolled-back roster refused, the door's limits."""

from __future__ import annotations

import base64
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
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


def test_the_direct_route_keeps_its_loop_free_and_says_codes_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A slow store write stalls no other request (the health check answers meanwhile); a
    store that fails answers its code only (503 when it is out, else 422), never the SQL or
    its values; a duplicate from the stream touches a direct case only; failed signature
    checks are charged to their address (429 past the budget)."""
    from sqlalchemy import exc as sa_exc

    from sync.envelope import SealedCase, envelope_to_text
    from sync.seal import open_case

    caplog.set_level("INFO")
    with platform(tmp_path) as plat:
        device = plat.new_device()
        site = plat.new_hospital(tmp_path, "直接病院", 35.68, 139.76)
        plat.start(site)
        assert site.runtime is not None
        service = site.runtime.service
        service.direct.refresh_roster()
        hpke = {h.id: h for h in device.client.hospital_directory(35.68, 139.76)}[site.id]
        limits = DirectLimits(
            unsigned_rate=0.001, unsigned_burst=3.0, auth_failure_rate=0.001, auth_failure_burst=3.0
        )
        url = plat.stack.enter_context(serve_in_thread(create_direct_app(service, limits)))
        target = DirectHospital(site.id, url, "")
        client = DirectClient(target, key=device.key, device_id=device.id, verify=False)
        plat.stack.callback(client.close)
        store = service.store
        real_add = store.add_case

        def row(case_id: str) -> PendingCase:
            return _row(case_id, device.id, device.key, site.id, hpke.hpke_public_key)

        # A write that waits (a busy store): the listener's loop is free meanwhile.
        entered, release = threading.Event(), threading.Event()

        def slow_add(**kwargs: Any) -> bool:
            entered.set()
            release.wait(60)
            return real_add(**kwargs)

        monkeypatch.setattr(store, "add_case", slow_add)
        with ThreadPoolExecutor(1) as pool:
            posted = pool.submit(client.post, row("slow-1"))
            assert entered.wait(60)
            try:
                health = httpx.get(f"{url}/direct/v1/health", timeout=10)
            finally:
                release.set()
            posted.result(timeout=60)
        assert health.status_code == 200
        assert store.case("slow-1") is not None

        # The store fails: the device hears the code only; the log the type's name only.
        secret = "device-id-and-envelope-bytes"
        failures: list[Exception] = [
            sa_exc.OperationalError("INSERT INTO cases", {"x": secret}, Exception(secret)),
            sa_exc.IntegrityError("INSERT INTO cases", {"x": secret}, Exception(secret)),
        ]

        def broken_add(**kwargs: Any) -> bool:
            raise failures.pop(0)

        monkeypatch.setattr(store, "add_case", broken_add)
        answers = []
        for case_id in ("broken-1", "broken-2"):
            with pytest.raises(HttpStatusError) as info:
                client.post(row(case_id))
            answers.append((info.value.status, info.value.hub_code))
            assert secret not in str(info.value)
        assert answers == [(503, "store_unavailable"), (422, "case_store_failed")]
        assert "case_store_failed (IntegrityError)" in caplog.text
        assert secret not in caplog.text
        monkeypatch.setattr(store, "add_case", real_add)

        # A case the stream brings again: a direct one is the platform's now (reconciled,
        # the report loop woken); any other changes nothing.
        wakes: list[int] = []
        monkeypatch.setattr(service.direct, "wake", lambda: wakes.append(1))

        def opened(pending: PendingCase) -> Any:
            return service.open_with_keys(
                lambda keys: open_case(
                    SealedCase.from_text(envelope_to_text(pending.envelope)),
                    hospital_id=site.id,
                    hospital_key=keys,
                    device_key_for=lambda _d: device.key.public_key(),
                )
            )

        streamed = opened(row("stream-1"))
        assert service._take(5, streamed, None) is True
        assert service._take(5, streamed, None) is False
        assert wakes == []
        assert service._take(6, opened(row("slow-1")), None) is False
        assert wakes == [1]
        assert _report(service, "slow-1") == "platform"

        # Bad signatures from one address: charged to it, then 429 before any check.
        forger = DirectClient(
            target, key=Ed25519PrivateKey.generate(), device_id=device.id, verify=False
        )
        plat.stack.callback(forger.close)
        statuses = []
        for i in range(5):
            with pytest.raises(HttpStatusError) as info:
                forger.post(row(f"forged-{i}"))
            statuses.append(info.value.status)
        assert statuses == [401, 401, 401, 429, 429]
        assert all(store.case(f"forged-{i}") is None for i in range(5))
        # A signature header elsewhere (the health check) pays as an unsigned request (one
        # of the three was the health check above).
        signed_health = [
            httpx.get(
                f"{url}/direct/v1/health", headers={"X-Kyukyu-Signature": "x"}, timeout=10
            ).status_code
            for _ in range(3)
        ]
        assert signed_health == [200, 200, 429]
