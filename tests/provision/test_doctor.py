"""``kyukyu doctor`` on healthy and broken devices: the expected line and exit code each."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge.doctor import DoctorContext, DoctorReport, run_doctor
from edge.provision import DeviceLayout, load_device_key, update_config
from edge.settings import load_device_settings
from sync.outbox import Outbox
from sync.seal import seal_case
from tests.provision._hub import LiveHub, live_hub
from tests.provision.conftest import KYUKYU_BIN, run_cli, run_json

OTHER_READER = "SONY FeliCa RC-S300/P"


@pytest.fixture(scope="module")
def pcscd() -> None:
    """pcscd with its virtual readers must be running; only listing them, no card slot is
    used, so the machine-wide vpcd lock is not needed (another session may hold it)."""
    from kyukyu.testing import vpcd_ready

    deadline = time.monotonic() + 60
    while not vpcd_ready():
        if time.monotonic() > deadline:
            pytest.fail("pcscd with vpcd is not running: run tests/cli or scripts/bootstrap")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with live_hub(tmp_path_factory.mktemp("hub")) as h:
        yield h


@pytest.fixture
def device(tmp_path: Path, hub: LiveHub, capsys: pytest.CaptureFixture[str]) -> Path:
    """A healthy device image: installed, the J-LIS roots the package ships (--bundled),
    enrolled with the live hub."""
    root = tmp_path / "root"
    root.mkdir()
    steps = [
        ["provision", "install", "--root", str(root), "--kyukyu-bin", KYUKYU_BIN],
        ["provision", "trust", "install", "--root", str(root), "--bundled"],
        ["provision", "enroll", "--root", str(root), "--hub", hub.url, f"--token={hub.token()}"],
    ]
    for argv in steps:
        rc, out = run_json(capsys, *argv)
        assert rc == 0, out
    return root


def _doctor(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    rc, out, _ = run_cli(capsys, "doctor", "--root", str(root), "--no-card-test", *extra)
    return rc, out


def _line(text: str, check: str) -> str:
    hits = [ln for ln in text.splitlines() if ln[5:].split(" ", 1)[0] == check]
    assert len(hits) == 1, text
    return hits[0]


def _statuses(report: DoctorReport) -> dict[str, str]:
    return {c.id: c.status for c in report.checks}


def test_healthy_device_every_check_ok(
    device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, text = _doctor(capsys, device)
    assert rc == 0, text
    lines = text.splitlines()
    assert len(lines) == 13
    for ln in lines:
        assert ln.startswith("OK   "), ln
        assert " / " in ln  # English / Japanese on the one line
    assert "Virtual PCD 00 00" in _line(text, "pcscd")
    assert "enrolled as device" in _line(text, "enrollment")
    assert "auth-2023" in _line(text, "roots")
    rc, out = run_json(capsys, "doctor", "--root", str(device), "--no-card-test")
    assert rc == 0
    assert out["ok"] is True
    checks = out["checks"]
    assert isinstance(checks, list)
    assert {c["id"] for c in checks} == {
        "pcscd",
        "nfcpy",
        "udev",
        "blacklist",
        "card",
        "platform",
        "enrollment",
        "clock",
        "device_key",
        "roots",
        "revocation",
        "disk",
        "outbox",
    }
    assert all(c["status"] == "ok" and c["message_ja"] for c in checks)


def test_no_pcscd(device: Path) -> None:
    """pcscd's client library pointed at a socket that does not exist."""
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(device / "no-such-pcscd.comm"))
    proc = subprocess.run(
        [str(Path(sys.prefix) / "bin/kyukyu"), "doctor", "--root", str(device), "--no-card-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout
    line = _line(proc.stdout, "pcscd")
    assert line.startswith("FAIL pcscd")
    assert "pcscd not reachable" in line
    assert "systemctl start pcscd.socket" in line
    assert "pcscd に接続できません" in line


def test_no_reader(device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]) -> None:
    update_config(DeviceLayout(device), {"reader_name": OTHER_READER})
    rc, text = _doctor(capsys, device)
    assert rc == 1
    line = _line(text, "pcscd")
    assert line.startswith("FAIL pcscd")
    assert f"reader '{OTHER_READER}' not seen by pcscd" in line
    assert "plug the reader in" in line
    # nfcpy device configured, none on USB.
    update_config(DeviceLayout(device), {"reader": "nfc", "reader_name": None})
    rc, text = _doctor(capsys, device)
    assert rc == 1
    assert _line(text, "nfcpy").startswith("FAIL nfcpy")
    assert _line(text, "pcscd").startswith("OK ")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_platform_down(device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]) -> None:
    update_config(DeviceLayout(device), {"hub_url": f"http://127.0.0.1:{_closed_port()}"})
    rc, text = _doctor(capsys, device, "--timeout", "2")
    assert rc == 1
    line = _line(text, "platform")
    assert line.startswith("FAIL platform")
    assert "unreachable" in line
    assert "check the network" in line
    assert _line(text, "enrollment").startswith("WARN enrollment")
    assert _line(text, "clock").startswith("WARN clock")
    # Offline, the device's own state still checks out.
    for check in ("device_key", "roots", "revocation", "outbox"):
        assert _line(text, check).startswith("OK "), check


def test_revoked_device(
    device: Path, hub: LiveHub, pcscd: None, capsys: pytest.CaptureFixture[str]
) -> None:
    device_id = load_device_settings(device / "etc/kyukyu/edge.env").device_id
    with hub.operator() as op:
        op.request_json("POST", f"/v1/devices/{device_id}/revoke", body={})
    rc, text = _doctor(capsys, device)
    assert rc == 1
    line = _line(text, "enrollment")
    assert line.startswith("FAIL enrollment")
    assert "REVOKED" in line
    assert "kyukyu provision enroll" in line
    assert _line(text, "platform").startswith("OK ")


def test_expired_revocation_snapshot(
    device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # The device's policy: a snapshot older than 1.8 s is expired; wait that long.
    update_config(DeviceLayout(device), {"revocation_max_age_hours": 0.0005})
    time.sleep(2.0)
    rc, text = _doctor(capsys, device)
    assert rc == 1
    line = _line(text, "revocation")
    assert line.startswith("FAIL revocation")
    assert "EXPIRED revocation snapshot" in line
    assert "失効情報の有効期限が切れています" in line


def test_tampered_revocation_snapshot(
    device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = device / "var/lib/kyukyu-edge/revocation.kkrv"
    data = bytearray(path.read_bytes())
    data[12:20] = (2**40).to_bytes(8, "big")  # a forged, newer sequence number
    path.write_bytes(bytes(data))
    rc, text = _doctor(capsys, device)
    assert rc == 1
    assert "not signed by the platform" in _line(text, "revocation")
    path.write_bytes(b"KKRV")
    rc, text = _doctor(capsys, device)
    assert rc == 1
    assert "damaged" in _line(text, "revocation")


def _ctx(device: Path, **kw: Any) -> DoctorContext:
    return DoctorContext(layout=DeviceLayout(device), card_test=False, **kw)


def test_clock_skewed(device: Path, pcscd: None) -> None:
    def skewed(seconds: float) -> Callable[[], datetime]:
        return lambda: datetime.now(UTC) + timedelta(seconds=seconds)

    report = run_doctor(_ctx(device, clock=skewed(600)))
    assert report.exit_code == 1
    clock = report.by_id("clock")
    assert clock.status == "fail"
    # HTTP Date has whole seconds (and uvicorn refreshes it once a second): +-2 s.
    seen = re.match(r"FAIL clock       clock \+(\d+) s from the platform", clock.line())
    assert seen, clock.line()
    assert 598 <= int(seen.group(1)) <= 602
    assert "timedatectl set-ntp true" in clock.line()
    assert [c for c, s in _statuses(report).items() if s != "ok"] == ["clock"]

    report = run_doctor(_ctx(device, clock=skewed(-30)))
    assert report.exit_code == 0
    assert report.by_id("clock").status == "warn"
    assert re.search(r"clock -(28|29|30|31|32) s", report.by_id("clock").line())


def test_disk_nearly_full_on_a_small_filesystem(
    device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state directory on a real 8 MB tmpfs: below the default 50 MB floor."""
    data = device / "var/lib/kyukyu-edge"
    st = data.stat()
    saved = device / "saved-state"
    shutil.copytree(data, saved)
    subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size=8m,mode=0700,uid={st.st_uid},gid={st.st_gid}",
            "kyukyu-test",
            str(data),
        ],
        check=True,
    )
    try:
        for f in saved.iterdir():
            shutil.copy2(f, data / f.name)
            os.chown(data / f.name, st.st_uid, st.st_gid)
        rc, text = _doctor(capsys, device)
        assert rc == 1, text
        line = _line(text, "disk")
        assert line.startswith("FAIL disk")
        assert "(< 50 MB)" in line
        assert "空き容量が不足しています" in line
        others = [ln for ln in text.splitlines() if not ln.startswith("OK ")]
        assert others == [line]
    finally:
        subprocess.run(["umount", str(data)], check=True)


def test_disk_thresholds(device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]) -> None:
    free_mb = shutil.disk_usage(device).free / 2**20
    rc, text = _doctor(capsys, device, "--disk-fail-mb", str(free_mb + 64))
    assert rc == 1
    line = _line(text, "disk")
    assert line.startswith("FAIL disk")
    assert "空き容量が不足しています" in line
    rc, text = _doctor(capsys, device, "--disk-warn-mb", str(free_mb + 64), "--disk-fail-mb", "1")
    assert rc == 0
    assert _line(text, "disk").startswith("WARN disk")


def test_sealed_cases_waiting(
    device: Path, pcscd: None, capsys: pytest.CaptureFixture[str]
) -> None:
    s = load_device_settings(device / "etc/kyukyu/edge.env")
    layout = DeviceLayout(device)
    key = load_device_key(layout.host(s.key_file))
    with Outbox(layout.host(s.outbox_path)) as outbox:
        for _ in range(2):
            outbox.enqueue(
                seal_case(
                    b"{}",
                    case_id=str(uuid.uuid4()),
                    device_id=s.device_id or "",
                    device_key=key,
                    recipients={"h": X25519PrivateKey.generate().public_key()},
                )
            )
    rc, text = _doctor(capsys, device)
    assert rc == 0
    assert _line(text, "outbox").startswith("WARN outbox      2 sealed case(s) waiting")


def test_missing_rules_and_not_enrolled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, text = _doctor(capsys, tmp_path)  # a blank machine
    assert rc == 1
    for check in ("udev", "blacklist", "platform", "enrollment", "device_key", "roots"):
        assert _line(text, check).startswith("FAIL "), check
    assert "kyukyu provision install" in _line(text, "udev")
