"""The hospital's direct endpoint (``hospital.direct``, docs/disaster.md) on a real
uvicorn, with a real platform for the roster: enrolled devices only, a revoked device
refused once the roster says so, a rolled-back roster refused, the door's limits."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hospital.direct import DirectLimits, create_direct_app
from kyukyu.testing import serve_in_thread
from sync import HttpStatusError, SnapshotRollback
from sync.direct import DirectClient, DirectHospital
from sync.outbox import PendingCase
from sync.seal import seal_case
from tests.hospital._world import platform

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


def test_the_direct_endpoint_takes_enrolled_devices_only(tmp_path: Path) -> None:
    with platform(tmp_path) as plat:
        device = plat.new_device()
        site = plat.start(plat.new_hospital(tmp_path, "直接病院", 35.68, 139.76))
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
