"""A key rotation while ``kyukyu hospital serve`` runs: no restart, no case lost.

A hospital made before the hybrid key receives with its X25519 key only; the
administrator runs ``kyukyu hospital keys rotate`` (the real CLI function, the real
platform) while the service runs. The running service reads the key file again when a
v2 case needs the key it lacks (``hospital.keyring``), opens it and the v1 case
sealed before the rotation; a key file replaced by one it cannot read leaves it
receiving with the keys it holds (logged, on the dashboard), a v2 case refused
meanwhile is kept and taken in once the file is good again, and the direct route
answers 503 (the device sends again) rather than refusing such a case for good.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hospital.direct import create_direct_app
from hospital.identity import HospitalKeys, rotate_hybrid_key
from hospital.keyring import LiveKeys
from hospital.main import HospitalRuntime
from kyukyu.testing import serve_in_thread
from sync import HttpStatusError, SealedCase
from sync.direct import DirectClient, DirectHospital
from sync.envelope import V1, V2
from sync.outbox import PendingCase
from sync.seal import seal_json
from sync.xwing import XWingPrivateKey
from tests.hospital._world import (
    PASSWORD,
    SCENE,
    Device,
    HospitalSite,
    Platform,
    cli,
    make_bundle,
    platform,
    sign_in,
    signed_in,
    totp_now,
    wait_for,
)

CORRUPT = b'{"hpke_private_key": "SECRET-BYTES'


def _old_install(p: Platform, tmp: Path, name: str) -> HospitalSite:
    """A hospital made before the hybrid key: its key file has X25519 only (``init``
    reuses a key file it finds), so the platform has that key only."""
    token = p.operator.request_json("POST", "/v1/hospital-enrollment-tokens", body={"name": name})[
        "token"
    ]
    data = tmp / f"old-{uuid.uuid4().hex[:6]}"
    data.mkdir(mode=0o700)
    keys = HospitalKeys.generate()
    HospitalKeys(keys.hpke, keys.signing, keys.storage, None).save(data / "hospital-key.json")
    doc = cli(
        "hospital", "init", "--data-dir", str(data), "--platform", p.url,
        "--token", token, "--lat", "35.68", "--lon", "139.76",
    )  # fmt: skip
    return HospitalSite(doc["hospital_id"], doc["name"], data)


def _seal(device: Device, site: HospitalSite) -> tuple[str, bytes]:
    """Seal as the device does: keys from the signed directory, version by the rule."""
    case_id = str(uuid.uuid4())
    directory = {h.id: h for h in device.client.hospital_directory(*SCENE)}
    sealed = seal_json(
        make_bundle(case_id, device.id),
        case_id=case_id,
        device_id=device.id,
        device_key=device.key,
        recipients={site.id: directory[site.id].sealing_keys},
    )
    return case_id, sealed


def _post(device: Device, site: HospitalSite, case_id: str, sealed: bytes) -> None:
    device.client.post_case(case_id, [site.id], sealed, idempotency_key=str(uuid.uuid4()))


def _send(device: Device, site: HospitalSite, version: int) -> str:
    case_id, sealed = _seal(device, site)
    assert SealedCase.from_bytes(sealed).version == version
    _post(device, site, case_id, sealed)
    return case_id


def _replace(path: Path, data: bytes) -> None:
    """What ``keys rotate`` does to the file: a 0600 file beside it renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _rotate(site: HospitalSite) -> None:
    out = cli("hospital", "keys", "rotate", "--data-dir", str(site.data_dir))
    assert out == {"made": True, "key_kinds": ["x25519", "xwing"]}


def test_serve_takes_the_rotated_key_without_restart(tmp_path: Path) -> None:
    """A real ``kyukyu hospital serve`` process, a rotation while it runs."""
    with platform(tmp_path) as p:
        site = _old_install(p, tmp_path, "回転病院")
        p.add_user(site, "alice")
        device = p.new_device()
        # v1 cases sealed before the rotation, posted after it (in a device's outbox).
        (in_flight, sealed_v1), (in_flight_2, sealed_v1_2) = (
            _seal(device, site),
            _seal(device, site),
        )
        assert SealedCase.from_bytes(sealed_v1).version == V1
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log_file = tmp_path / "hospital.log"
        # The file is looked at only when a case needs a key kind not held: no timer helps.
        env = {**os.environ, "KYUKYU_HOSPITAL_KEY_CHECK_SECONDS": "3600"}
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "kyukyu"), "hospital", "serve",
             "--data-dir", str(site.data_dir), "--port", str(port),
             "--log-file", str(log_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        staff: httpx.Client | None = None
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                assert proc.poll() is None, "serve exited"
                try:
                    return httpx.get(url + "/login", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, timeout=30, what="serve")
            staff, r = sign_in(url, "alice", PASSWORD, totp_now(site.users["alice"]))
            assert r.status_code == 303

            def listed(*case_ids: str) -> bool:
                assert staff is not None
                doc = staff.get("/api/cases").json()
                assert doc["refused"] == 0, doc
                return set(case_ids) <= {c["case_id"] for c in doc["cases"]}

            before = _send(device, site, V1)
            wait_for(lambda: listed(before), what="a v1 case before the rotation")

            _rotate(site)
            _post(device, site, in_flight, sealed_v1)  # v1, in flight across the rotation
            after = _send(device, site, V2)  # the next directory: v2
            wait_for(lambda: listed(in_flight, after), what="the v1 in flight and the v2 case")

            # A replacement the service cannot read: it keeps its keys and goes on.
            seed = json.loads((site.data_dir / "hospital-key.json").read_text())["xwing_seed"]
            _replace(site.data_dir / "hospital-key.json", CORRUPT)
            later = [_send(device, site, V2), in_flight_2]
            _post(device, site, in_flight_2, sealed_v1_2)
            wait_for(lambda: listed(*later), what="cases after a corrupt key file")
            assert proc.poll() is None
        finally:
            if staff is not None:
                staff.close()
            proc.terminate()
            proc.wait(15)
        text = log_file.read_text()
        records = [json.loads(line) for line in text.splitlines()]
        assert any("key file read again: opening x25519+xwing" in r["message"] for r in records)
        assert seed not in text
        assert "envelope_wrong_key_kind" not in text  # opened at once, never refused first
        assert not any(r["level"] == "ERROR" for r in records), "the file was never looked at"


def _held(site: HospitalSite) -> int:
    assert site.runtime is not None
    return len(site.runtime.store.held_rejections())


def test_a_case_refused_for_a_key_not_read_yet_is_taken_once_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with platform(tmp_path) as p:
        site = _old_install(p, tmp_path, "保留病院")
        p.add_user(site, "alice")
        device = p.new_device()
        p.start(site, key_check_seconds=3600)
        assert site.runtime is not None
        service = site.runtime.service
        key_file = site.data_dir / "hospital-key.json"
        service.direct.refresh_roster()
        direct_url = p.stack.enter_context(serve_in_thread(create_direct_app(service)))
        direct = DirectClient(
            DirectHospital(site.id, direct_url, ""), key=device.key, device_id=device.id,
            verify=False,
        )  # fmt: skip
        p.stack.callback(direct.close)

        v1, sealed_v1 = _seal(device, site)  # sealed before the rotation
        _rotate(site)
        good = key_file.read_bytes()
        seed = json.loads(good)["xwing_seed"]
        _replace(key_file, CORRUPT)  # replaced again before the service read it

        held = _send(device, site, V2)  # needs the X-Wing key: the file gives none
        wait_for(lambda: _held(site) == 1, what="the v2 case held")
        assert service.store.case(held) is None
        problem = service.keys.problem
        assert problem is not None
        assert problem.code == "key_file_unreadable"
        assert service.keys.kinds() == ("x25519",)
        staff = p.stack.enter_context(signed_in(site, "alice"))  # one sign-in: one TOTP step
        page = staff.get("/").text
        shown = re.search(r'<p class="service-warning" id="key-problem"[^>]*>([^<]*)</p>', page)
        assert shown is not None
        assert 'data-code="key_file_unreadable"' in shown[0]
        assert "hidden" not in shown[0]
        assert "鍵ファイルを読めません" in shown[1]
        listed = staff.get("/api/cases").json()
        assert listed["refused"] == 1
        assert listed["key_problem"]["code"] == "key_file_unreadable"  # the page's script
        assert "自動で受信" in staff.get("/rejections").text  # 受信できない事案: it will come
        # The direct route: 503, the device keeps the case and sends it again.
        direct_id, direct_sealed = _seal(device, site)
        direct_row = PendingCase(direct_id, f"key-{direct_id}", (site.id,), direct_sealed, 0, 0.0)
        with pytest.raises(HttpStatusError) as info:
            direct.post(direct_row)
        assert info.value.status == 503
        assert info.value.hub_code == "keys_unavailable"
        # Still receiving v1.
        _post(device, site, v1, sealed_v1)
        wait_for(lambda: service.store.case(v1), what="a v1 case with the corrupt file")

        _replace(key_file, good)  # the administrator puts the rotated file back
        nxt = _send(device, site, V2)  # needs the key: the file is read again, then the held
        for case_id in (nxt, held):
            wait_for(lambda c=case_id: service.store.case(c), what=f"case {case_id}")
        wait_for(lambda: _held(site) == 0, what="the held case released")
        assert service.store.rejections() == []
        wait_for(lambda: held not in service.state.unacked(), what="the held case acknowledged")
        assert held in service.state.received_ids()
        assert service.keys.problem is None
        assert service.keys.kinds() == ("x25519", "xwing")
        assert '<p class="service-warning" id="key-problem" role="alert" data-code="" hidden>' in (
            staff.get("/").text
        )
        listed = staff.get("/api/cases").json()
        assert listed["refused"] == 0
        assert listed["key_problem"] is None
        direct.post(direct_row)  # sent again by the device: taken now
        stored = service.store.case(direct_id)
        assert stored is not None
        assert stored.route == "direct"
        # The audit keeps the refusal and its healing.
        healed = service.store.audit_rows("case_rejection_healed")
        assert [(a.case_id, a.detail) for a in healed] == [(held, "envelope_wrong_key_kind")]
        # The case after the file was put back opened at once: never refused first.
        assert [a.case_id for a in service.store.audit_rows("case_rejected")] == [held]

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors if r.name == "hospital.keys"]
    assert "key_file_unreadable" in errors[0].getMessage()
    for record in caplog.records:
        assert seed not in record.getMessage()
        assert "SECRET" not in record.getMessage()


def _keys_file(tmp: Path, keys: HospitalKeys) -> Path:
    path = tmp / "hospital-key.json"
    keys.save(path)
    return path


def test_live_keys_take_only_an_added_xwing_key(tmp_path: Path) -> None:
    """Every other change leaves the keys held in use, with the reason."""
    base = HospitalKeys.generate()
    old = HospitalKeys(base.hpke, base.signing, base.storage, None)
    path = _keys_file(tmp_path, old)
    changes: list[tuple[str | None, tuple[str, ...]]] = []  # what on_change saw

    def code() -> str | None:
        return None if live.problem is None else live.problem.code

    live = LiveKeys(path, old, on_change=lambda: changes.append((code(), live.kinds())))
    assert live.refresh() is False  # unchanged: not read again
    assert live.keys is old

    def put(keys: HospitalKeys, mode: int = 0o600) -> None:
        _replace(path, keys._file_bytes())
        os.chmod(path, mode)

    put(old)  # the same keys written again
    assert live.refresh() is False
    assert live.keys is old
    assert live.problem is None
    put(HospitalKeys(X25519PrivateKey.generate(), base.signing, base.storage, None))
    assert live.refresh() is False
    assert live.problem is not None
    assert live.problem.code == "key_file_other_keys"
    put(HospitalKeys(base.hpke, Ed25519PrivateKey.generate(), base.storage, None))
    assert live.refresh() is False
    assert live.problem.code == "key_file_other_keys"
    put(HospitalKeys(base.hpke, base.signing, os.urandom(32), None))
    assert live.refresh() is False
    assert live.problem.code == "key_file_other_keys"
    put(HospitalKeys(base.hpke, base.signing, base.storage, base.xwing), mode=0o644)
    assert live.refresh() is False
    assert live.problem.code == "key_file_mode"
    path.unlink()
    assert live.refresh() is False
    assert live.problem.code == "key_file_missing"
    assert live.keys is old
    # Told once per new problem (the same problem again is not news).
    assert changes == [
        ("key_file_other_keys", ("x25519",)),
        ("key_file_mode", ("x25519",)),
        ("key_file_missing", ("x25519",)),
    ]

    put(HospitalKeys(base.hpke, base.signing, base.storage, base.xwing))
    assert live.refresh() is True
    assert live.problem is None
    assert live.kinds() == ("x25519", "xwing")
    assert changes[3:] == [(None, ("x25519", "xwing"))]
    taken = live.keys
    # Once held, the X-Wing key stays: neither dropped nor replaced (v2 cases in flight).
    put(old)
    assert live.refresh() is False
    assert live.problem.code == "key_file_other_keys"
    put(HospitalKeys(base.hpke, base.signing, base.storage, XWingPrivateKey.generate()))
    assert live.refresh() is False
    assert live.problem.code == "key_file_other_keys"
    assert live.keys is taken
    assert live.keys.xwing_public_b64() == base.xwing_public_b64()
    assert changes[4:] == [("key_file_other_keys", ("x25519", "xwing"))]


def test_a_key_file_that_is_not_one_is_a_typed_error_quoting_nothing(tmp_path: Path) -> None:
    """What ``serve`` (and every command) says at start about such a file: exit 1,
    ``hospital_not_initialised``, the path and the kind of fault, never the file's bytes."""
    from hospital.errors import NotInitialised

    path = tmp_path / "hospital-key.json"
    good = json.loads(HospitalKeys.generate()._file_bytes())
    for text in (
        CORRUPT.decode(),
        "[1, 2]",
        json.dumps({**good, "storage_key": "c2VjcmV0LXN0b3JhZ2Uta2V5"}),
        json.dumps({k: v for k, v in good.items() if k != "signing_private_key"}),
        json.dumps({**good, "hpke_private_key": "!!secret!!"}),
    ):
        _replace(path, text.encode())
        with pytest.raises(NotInitialised) as info:
            HospitalKeys.load(path)
        assert str(path) in str(info.value)
        for secret in ("SECRET", "c2VjcmV0", "secret", good["storage_key"]):
            assert secret not in str(info.value)


def test_a_case_held_before_a_restart_is_taken_at_start(tmp_path: Path) -> None:
    """The platform has the hybrid key but the service's key file not (rotated into
    another file, copied in later): the v2 case is held; a service started with the
    right file takes it in at start, acknowledged, and the banner no longer counts it. One
    held from a device revoked meanwhile is refused for that now (its envelope dropped)."""
    with platform(tmp_path) as p:
        site = _old_install(p, tmp_path, "再起動病院")
        device, lost = p.new_device(), p.new_device()
        key_file = site.data_dir / "hospital-key.json"
        elsewhere = tmp_path / "rotated-key.json"
        elsewhere.write_bytes(key_file.read_bytes())
        elsewhere.chmod(0o600)
        assert rotate_hybrid_key(site.data_dir, key_file=elsewhere).made
        first = HospitalRuntime(site.settings(key_check_seconds=3600))
        first.service.start()
        try:
            held, revoked = _send(device, site, V2), _send(lost, site, V2)
            wait_for(lambda: len(first.store.held_rejections()) == 2, what="the v2 cases held")
            assert first.store.case(held) is None
        finally:
            first.service.stop()
            first.close()
        p.operator.request_json("POST", f"/v1/devices/{lost.id}/revoke", body={})
        _replace(key_file, elsewhere.read_bytes())
        second = HospitalRuntime(site.settings(key_check_seconds=3600))
        # A round of the key check with nothing new (the file as read at start, no retry
        # asked for) opens none of the held cases: only a newly held key can.
        assert second.service._keys_round(False) is False
        assert len(second.store.held_rejections()) == 2
        second.service.start()
        try:
            wait_for(lambda: second.store.case(held), what="the held case taken at start")
            wait_for(lambda: held not in second.service.state.unacked(), what="its ack")
            wait_for(lambda: second.store.held_rejections() == [], what="none held")
            rows = second.store.rejections()
            assert [(r.case_id, r.code, r.envelope) for r in rows] == [
                (revoked, "envelope_unknown_device", None)
            ]
            assert second.store.case(revoked) is None
        finally:
            second.service.stop()
            second.close()
