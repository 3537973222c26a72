"""``kyukyu provision install`` into a staging root: every file, permission, user; idempotent."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.provision._tree import tree_digest, tree_state
from tests.provision.conftest import KYUKYU_BIN, os_binaries, run_cli, run_json

ALL = ("--role", "edge", "--role", "hub", "--role", "hospital")

FILES = {  # device path -> mode (all owned by root)
    "etc/sysusers.d/kyukyu-edge.conf": 0o644,
    "etc/sysusers.d/kyukyu-hub.conf": 0o644,
    "etc/sysusers.d/kyukyu-hospital.conf": 0o644,
    "etc/udev/rules.d/60-kyukyu-readers.rules": 0o644,
    "etc/modprobe.d/kyukyu-nfc-blacklist.conf": 0o644,
    "etc/systemd/system/pcscd.socket.d/kyukyu.conf": 0o644,
    "etc/systemd/system/kyukyu-edge.service": 0o644,
    "etc/systemd/system/kyukyu-kiosk.service": 0o644,
    "etc/systemd/system/kyukyu-refresh.service": 0o644,
    "etc/systemd/system/kyukyu-refresh.timer": 0o644,
    "etc/systemd/system/kyukyu-hub.service": 0o644,
    "etc/systemd/system/kyukyu-hospital.service": 0o644,
    "etc/kyukyu/hub.env": 0o644,  # the site's from then on (never rewritten)
}
DIRS = {  # device path -> (mode, owner)
    "etc/kyukyu": (0o755, "root"),
    "etc/kyukyu/credentials": (0o700, "root"),
    "etc/kyukyu/jpki-roots": (0o755, "root"),
    "var/lib/kyukyu-edge": (0o700, "kyukyu-edge"),
    "var/lib/kyukyu-hub": (0o700, "kyukyu-hub"),
    "var/lib/kyukyu-hospital": (0o700, "kyukyu-hospital"),
}
LINKS = {
    "etc/systemd/system/multi-user.target.wants/kyukyu-edge.service",
    "etc/systemd/system/graphical.target.wants/kyukyu-kiosk.service",
    "etc/systemd/system/timers.target.wants/kyukyu-refresh.timer",
    "etc/systemd/system/multi-user.target.wants/kyukyu-hub.service",
    "etc/systemd/system/multi-user.target.wants/kyukyu-hospital.service",
}


def _passwd(root: Path) -> dict[str, list[str]]:
    return {
        ln.split(":")[0]: ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines()
    }


def _install(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> dict[str, object]:
    rc, out = run_json(
        capsys, "provision", "install", "--root", str(root), "--kyukyu-bin", KYUKYU_BIN, *extra
    )
    assert rc == 0, out
    return out


def test_install_every_file_permission_and_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    out = _install(capsys, root, *ALL)
    users = _passwd(root)
    for name in ("kyukyu-edge", "kyukyu-kiosk", "kyukyu-hub", "kyukyu-hospital"):
        entry = users[name]
        assert 0 < int(entry[2]) < 1000, "a system user"
        assert entry[5] == f"/var/lib/{name}"
        assert entry[6] == "/usr/sbin/nologin"
    groups = {ln.split(":")[0] for ln in (root / "etc/group").read_text().splitlines()}
    assert {"kyukyu-edge", "kyukyu-kiosk", "kyukyu-hub", "kyukyu-hospital"} <= groups
    owners = ("kyukyu-edge", "kyukyu-hub", "kyukyu-hospital")
    assert out["users"] == {n: int(users[n][2]) for n in owners}

    for rel, mode in FILES.items():
        st = (root / rel).lstat()
        assert stat.S_ISREG(st.st_mode), rel
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 0, 0), rel
    for rel, (mode, owner) in DIRS.items():
        st = (root / rel).lstat()
        assert stat.S_ISDIR(st.st_mode), rel
        uid = 0 if owner == "root" else int(users[owner][2])
        gid = 0 if owner == "root" else int(users[owner][3])
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, uid, gid), rel
    for rel in LINKS:
        assert (root / rel).is_symlink(), rel
    # The units run this kyukyu; nothing is left to substitute.
    for unit in (root / "etc/systemd/system").glob("kyukyu-*.service"):
        text = unit.read_text()
        assert "@KYUKYU@" not in text
    assert (
        f"ExecStart={KYUKYU_BIN} edge --web"
        in (root / "etc/systemd/system/kyukyu-edge.service").read_text()
    )
    # Exactly these files (plus the account databases sysusers keeps).
    state = tree_state(root)
    files = {p for p, v in state.items() if v[0] == "file"}
    accounts = {"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/.pwd.lock"}
    assert files == set(FILES) | accounts


def test_second_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    first = _install(capsys, root, *ALL)
    assert first["changed"]
    before = tree_digest(root)
    second = _install(capsys, root, *ALL)
    assert second["changed"] == []
    assert tree_digest(root) == before
    rc, text, _ = run_cli(
        capsys, "provision", "install", "--root", str(root), "--kyukyu-bin", KYUKYU_BIN, *ALL
    )
    assert rc == 0
    assert "nothing to change" in text
    assert tree_digest(root) == before


def test_install_repairs_a_tampered_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _install(capsys, root)
    rules = root / "etc/udev/rules.d/60-kyukyu-readers.rules"
    good = rules.read_bytes()
    rules.write_text("# emptied\n")
    rules.chmod(0o666)
    data = root / "var/lib/kyukyu-edge"
    data.chmod(0o755)
    out = _install(capsys, root)
    assert set(out["changed"]) == {  # type: ignore[arg-type]
        "/etc/udev/rules.d/60-kyukyu-readers.rules",
        "/var/lib/kyukyu-edge",
    }
    assert rules.read_bytes() == good
    assert rules.stat().st_mode & 0o777 == 0o644
    assert data.stat().st_mode & 0o777 == 0o700


def test_the_sites_hub_settings_stay_and_are_what_the_hub_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub_server.core.config import load_hub_settings

    root = tmp_path / "root"
    root.mkdir()
    _install(capsys, root, "--role", "hub")
    conf = root / "etc/kyukyu/hub.env"
    unit = (root / "etc/systemd/system/kyukyu-hub.service").read_text()
    assert "Environment=KYUKYU_HUB_CONFIG=/etc/kyukyu/hub.env" in unit
    assert "\nEnvironmentFile=" not in unit  # systemd would read the file with its own syntax
    for line in conf.read_text().splitlines():
        if line.startswith("KYUKYU_HUB_DB="):
            assert "/run/postgresql" in line
    site = conf.read_text().replace("LISTEN_PORT=8600", "LISTEN_PORT=8700  # this site")
    conf.write_text(site)
    assert "/etc/kyukyu/hub.env" not in _install(capsys, root, "--role", "hub")["changed"]
    assert conf.read_text() == site
    for name in ("KYUKYU_HUB_DB", "KYUKYU_HUB_LISTEN_PORT", "KYUKYU_HUB_TRUST_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_hub_settings(conf)
    assert settings.listen_port == 8700
    assert settings.is_postgres
    assert str(settings.trust_roots_dir) == "/etc/kyukyu/jpki-roots"


def test_systemd_analyze_verify_accepts_the_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os_binaries(root)
    _install(capsys, root, *ALL)
    units = [
        "kyukyu-edge.service",
        "kyukyu-kiosk.service",
        "kyukyu-hub.service",
        "kyukyu-hospital.service",
        "kyukyu-refresh.service",
        "kyukyu-refresh.timer",
        "pcscd.socket",
    ]
    proc = subprocess.run(
        ["/usr/bin/systemd-analyze", "verify", f"--root={root}", "--man=no", *units],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    # The check is real: a unit whose program is missing from the image is refused.
    (root / "usr/bin/cage").unlink()
    proc = subprocess.run(
        ["/usr/bin/systemd-analyze", "verify", f"--root={root}", "--man=no", units[1]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "/usr/bin/cage" in proc.stderr


def test_unknown_hardware_dir_is_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = run_json(
        capsys,
        "provision",
        "install",
        "--root",
        str(tmp_path),
        "--kyukyu-bin",
        KYUKYU_BIN,
        "--hardware-dir",
        str(tmp_path / "nowhere"),
    )
    assert rc == 1
    assert out["error"]["code"] == "provision_failed"  # type: ignore[index]


@pytest.mark.parametrize(
    ("unit", "threshold"),
    [
        ("kyukyu-edge.service", 2.0),
        ("kyukyu-refresh.service", 2.0),
        ("kyukyu-hub.service", 2.0),
        ("kyukyu-hospital.service", 2.0),
        ("kyukyu-kiosk.service", 4.5),  # a browser at the seat; its own sandbox does the rest
    ],
)
def test_systemd_analyze_security_exposure(
    unit: str, threshold: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """systemd's own hardening score (0 best .. 10 worst), offline on the staging root."""
    root = tmp_path / "root"
    root.mkdir()
    os_binaries(root)
    _install(capsys, root, *ALL)
    proc = subprocess.run(
        [
            "/usr/bin/systemd-analyze",
            "security",
            "--offline=true",
            f"--root={root}",
            f"--threshold={round(threshold * 10)}",  # exposure x 10, an integer
            "--no-pager",
            unit,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    level = re.search(rf"Overall exposure level for {unit}: ([0-9.]+)", proc.stdout)
    assert level, proc.stdout[-500:]
    assert float(level.group(1)) <= threshold
