"""``kyukyu hospital keys rotate`` with cases in flight: an install made before the hybrid
key gets one (the 0600 key file rewritten, the X25519 key kept) and publishes it through
the platform; a v1 case sealed before the rotation and still waiting at the platform opens
after it, and the next case, sealed by the device's rule from the new directory, is v2."""

from __future__ import annotations

import io
import json
import stat
import uuid
from contextlib import redirect_stdout
from pathlib import Path

from hospital.identity import HospitalKeys, load_identity
from hospital.main import HospitalRuntime
from kyukyu.cli import main as kyukyu_main
from sync import SealedCase
from sync.envelope import V1, V2
from sync.seal import seal_json
from tests.hospital._world import (
    SCENE,
    Device,
    HospitalSite,
    Platform,
    cli,
    make_bundle,
    operator_key_doc,
    platform,
    wait_for,
)


def _without_pq(p: Platform, tmp: Path) -> list[dict[str, object]]:
    """``kyukyu hub hospitals --without-pq``: the operator's list, JSON lines."""
    key_file = tmp / "operator-key.json"
    key_file.write_text(json.dumps(operator_key_doc(p)))
    out = io.StringIO()
    with redirect_stdout(out):
        rc = kyukyu_main(
            ["hub", "hospitals", "--without-pq", "--platform", p.url,
             "--operator-key", str(key_file)]
        )  # fmt: skip
    assert rc == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _send_by_rule(device: Device, site: HospitalSite) -> tuple[str, int]:
    """Seal as the device does (keys from the signed directory, version by the rule)."""
    case_id = str(uuid.uuid4())
    directory = {h.id: h for h in device.client.hospital_directory(*SCENE)}
    sealed = seal_json(
        make_bundle(case_id, device.id),
        case_id=case_id,
        device_id=device.id,
        device_key=device.key,
        recipients={site.id: directory[site.id].sealing_keys},
    )
    device.client.post_case(case_id, [site.id], sealed, idempotency_key=str(uuid.uuid4()))
    return case_id, SealedCase.from_bytes(sealed).version


def test_rotation_with_cases_in_flight(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        # An install made before the hybrid key: its key file has none (``init`` reuses a
        # key file it finds), so the platform has its X25519 key only.
        token = p.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": "旧鍵病院"}
        )["token"]
        data = tmp_path / "old-install"
        data.mkdir(mode=0o700)
        old = HospitalKeys.generate()
        old = HospitalKeys(old.hpke, old.signing, old.storage, None)
        old.save(data / "hospital-key.json")
        doc = cli(
            "hospital", "init", "--data-dir", str(data), "--platform", p.url,
            "--token", token, "--lat", "35.68", "--lon", "139.76",
        )  # fmt: skip
        site = HospitalSite(doc["hospital_id"], doc["name"], data)
        device = p.new_device()
        before = p.new_device()
        assert [h.key_kinds for h in device.client.hospital_directory(*SCENE)] == [("x25519",)]

        in_flight, version = _send_by_rule(before, site)  # waits at the platform
        assert version == V1
        listed = _without_pq(p, tmp_path)
        assert [(h["id"], h["key_kinds"], h["require_pq"]) for h in listed] == [
            (site.id, ["x25519"], False)
        ]

        out = cli("hospital", "keys", "rotate", "--data-dir", str(data))
        assert out == {"made": True, "key_kinds": ["x25519", "xwing"]}
        key_file = data / "hospital-key.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        keys = load_identity(data).keys
        assert keys.xwing is not None
        assert keys.hpke_public_b64() == old.hpke_public_b64()  # v1 keeps opening
        assert keys.storage == old.storage
        ident = json.loads((data / "identity.json").read_text())
        assert ident["xwing_public_key"] == keys.xwing_public_b64()
        # Again: nothing new is made, the same key is published again.
        again = cli("hospital", "keys", "rotate", "--data-dir", str(data))
        assert again == {"made": False, "key_kinds": ["x25519", "xwing"]}
        assert load_identity(data).keys.xwing_public_b64() == keys.xwing_public_b64()

        assert [h.key_kinds for h in device.client.hospital_directory(*SCENE)] == [
            ("x25519", "xwing")
        ]
        after, version = _send_by_rule(device, site)
        assert version == V2
        assert _without_pq(p, tmp_path) == []

        runtime = HospitalRuntime(site.settings())
        runtime.service.start()
        try:
            for case_id in (in_flight, after):
                wait_for(lambda c=case_id: runtime.store.case(c), what=f"case {case_id}")
            assert runtime.store.rejections() == []
        finally:
            runtime.service.stop()
            runtime.close()
