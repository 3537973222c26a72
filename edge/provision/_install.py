"""``kyukyu provision install``: the hardware files, units and service users into a root.

The files are package data (``edge/provision/hardware/``, found by ``hardware_dir()``);
``@KYUKYU@`` in a unit becomes the absolute path of the ``kyukyu`` executable. Users are created by
``systemd-sysusers --root=ROOT`` from the installed sysusers.d entries (the same
tool on the device and for a staging root). Units are enabled offline with
``systemctl --root=ROOT enable``. Every step compares before it writes, so a
second run changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from errbase.paths import CONFIG_DIR, HOSPITAL_DATA_DIR, HUB_CONFIG, HUB_DATA_DIR

from ._layout import (
    CREDENTIALS_DIR,
    DATA_DIR,
    ROOTS_DIR,
    SERVICE_USER,
    DeviceLayout,
    ProvisionError,
    ensure_dir,
    hardware_dir,
    which,
    write_if_changed,
)

__all__ = ["ROLES", "FileSpec", "InstallReport", "Role", "default_kyukyu_bin", "install"]

Role = Literal["edge", "hub", "hospital"]
ROLES: tuple[Role, ...] = ("edge", "hub", "hospital")


@dataclass(frozen=True)
class FileSpec:
    """One hardware file and where it goes on the device."""

    source: str
    dest: str
    mode: int = 0o644
    template: bool = False
    # A site's file (settings): written when absent, never rewritten once it is there.
    keep: bool = False


@dataclass(frozen=True)
class DirSpec:
    path: str
    mode: int
    owner: str = "root"


@dataclass(frozen=True)
class RoleFiles:
    files: tuple[FileSpec, ...]
    dirs: tuple[DirSpec, ...]
    units: tuple[str, ...]


_ETC_DIRS = (
    DirSpec(str(CONFIG_DIR), 0o755),
    DirSpec(str(CREDENTIALS_DIR), 0o700),  # read by systemd (LoadCredential), not the services
)

ROLE_FILES: dict[Role, RoleFiles] = {
    "edge": RoleFiles(
        files=(
            FileSpec("sysusers.d/kyukyu-edge.conf", "/etc/sysusers.d/kyukyu-edge.conf"),
            FileSpec("udev/60-kyukyu-readers.rules", "/etc/udev/rules.d/60-kyukyu-readers.rules"),
            FileSpec(
                "modprobe/kyukyu-nfc-blacklist.conf", "/etc/modprobe.d/kyukyu-nfc-blacklist.conf"
            ),
            FileSpec(
                "systemd/pcscd.socket.d/kyukyu.conf",
                "/etc/systemd/system/pcscd.socket.d/kyukyu.conf",
            ),
            FileSpec(
                "systemd/kyukyu-edge.service",
                "/etc/systemd/system/kyukyu-edge.service",
                template=True,
            ),
            FileSpec("systemd/kyukyu-kiosk.service", "/etc/systemd/system/kyukyu-kiosk.service"),
            FileSpec(
                "systemd/kyukyu-refresh.service",
                "/etc/systemd/system/kyukyu-refresh.service",
                template=True,
            ),
            FileSpec("systemd/kyukyu-refresh.timer", "/etc/systemd/system/kyukyu-refresh.timer"),
        ),
        dirs=(
            *_ETC_DIRS,
            DirSpec(str(ROOTS_DIR), 0o755),
            DirSpec(str(DATA_DIR), 0o700, SERVICE_USER),
        ),
        units=("kyukyu-edge.service", "kyukyu-kiosk.service", "kyukyu-refresh.timer"),
    ),
    "hub": RoleFiles(
        files=(
            FileSpec("sysusers.d/kyukyu-hub.conf", "/etc/sysusers.d/kyukyu-hub.conf"),
            FileSpec("etc/hub.env", str(HUB_CONFIG), keep=True),
            FileSpec(
                "systemd/kyukyu-hub.service",
                "/etc/systemd/system/kyukyu-hub.service",
                template=True,
            ),
        ),
        dirs=(
            *_ETC_DIRS,
            DirSpec(str(ROOTS_DIR), 0o755),
            DirSpec(str(HUB_DATA_DIR), 0o700, "kyukyu-hub"),
        ),
        units=("kyukyu-hub.service",),
    ),
    "hospital": RoleFiles(
        files=(
            FileSpec("sysusers.d/kyukyu-hospital.conf", "/etc/sysusers.d/kyukyu-hospital.conf"),
            FileSpec(
                "systemd/kyukyu-hospital.service",
                "/etc/systemd/system/kyukyu-hospital.service",
                template=True,
            ),
        ),
        dirs=(*_ETC_DIRS, DirSpec(str(HOSPITAL_DATA_DIR), 0o700, "kyukyu-hospital")),
        units=("kyukyu-hospital.service",),
    ),
}


@dataclass
class InstallReport:
    """What an install did: ``changed`` lists device paths written or fixed."""

    root: Path
    roles: tuple[Role, ...]
    changed: list[str] = field(default_factory=list)
    users: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "roles": list(self.roles),
            "changed": self.changed,
            "users": self.users,
        }


def default_kyukyu_bin() -> str:
    """The ``kyukyu`` of the running environment (a venv's ``bin/``), else the PATH's."""
    here = Path(sys.prefix) / "bin" / "kyukyu"
    if here.is_file():
        return str(here)
    found = which("kyukyu")
    if found:
        return str(Path(found).resolve())
    raise ProvisionError("no kyukyu executable found: give --kyukyu-bin")


Runner = Callable[[list[str]], None]


def _run(cmd: list[str]) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ProvisionError(f"{cmd[0]} is not installed (Debian: systemd)") from None
    except subprocess.CalledProcessError as exc:
        raise ProvisionError(f"{' '.join(cmd)}: {exc.stderr.strip()[:300]}") from None


def install(
    root: Path,
    *,
    roles: Iterable[Role] = ("edge",),
    kyukyu_bin: str | None = None,
    hardware: Path | None = None,
    enable: bool = True,
    run: Runner = _run,
) -> InstallReport:
    """Install the files of ``roles`` under ``root`` and create their users (idempotent)."""
    chosen = tuple(dict.fromkeys(roles))
    for r in chosen:
        if r not in ROLE_FILES:
            raise ProvisionError(f"unknown role {r!r} (one of {', '.join(ROLES)})")
    layout = DeviceLayout(root)
    src = hardware or hardware_dir()
    exe = kyukyu_bin or default_kyukyu_bin()
    if not exe.startswith("/"):
        raise ProvisionError("--kyukyu-bin must be an absolute path")
    report = InstallReport(root=root, roles=chosen)
    if not root.is_dir():
        raise ProvisionError(f"{root} is not a directory")
    specs = [f for r in chosen for f in ROLE_FILES[r].files]
    dirs = list(dict.fromkeys(d for r in chosen for d in ROLE_FILES[r].dirs))

    # 1. users first: the directories and files below are owned by them.
    for spec in specs:
        if spec.dest.startswith("/etc/sysusers.d/"):
            _install_file(layout, src, spec, exe, report)
    ensure_dir(layout.host("/etc"), mode=0o755, uid=0, gid=0)
    sysusers = ["systemd-sysusers"]
    if not layout.is_live:
        sysusers.append(f"--root={root}")
    run(sysusers)
    for r in chosen:
        for d in ROLE_FILES[r].dirs:
            if d.owner != "root":
                report.users[d.owner] = layout.user(d.owner).uid

    # 2. directories, 3. files.
    for d in dirs:
        uid = gid = 0
        if d.owner != "root":
            u = layout.user(d.owner)
            uid, gid = u.uid, u.gid
        if ensure_dir(layout.host(d.path), mode=d.mode, uid=uid, gid=gid):
            report.changed.append(d.path)
    for spec in specs:
        if not spec.dest.startswith("/etc/sysusers.d/"):
            _install_file(layout, src, spec, exe, report)

    # 4. the system picks them up.
    units = [u for r in chosen for u in ROLE_FILES[r].units]
    if layout.is_live and Path("/run/systemd/system").is_dir():
        run(["systemctl", "daemon-reload"])
        if "edge" in chosen:
            run(["udevadm", "control", "--reload-rules"])
            run(["udevadm", "trigger", "--subsystem-match=usb", "--action=add"])
    if enable:
        for unit in units:
            wanted = _wanted_by(layout.host(f"/etc/systemd/system/{unit}"))
            link = layout.host(f"/etc/systemd/system/{wanted}.wants/{unit}")
            if not link.is_symlink():
                cmd = ["systemctl"]
                if not layout.is_live:
                    cmd.append(f"--root={root}")
                run([*cmd, "enable", unit])
                report.changed.append(f"/etc/systemd/system/{wanted}.wants/{unit}")
    return report


def _wanted_by(unit_file: Path) -> str:
    for line in unit_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("WantedBy="):
            return line.partition("=")[2].split()[0]
    raise ProvisionError(f"{unit_file.name} has no WantedBy=")


def _install_file(
    layout: DeviceLayout, src: Path, spec: FileSpec, exe: str, report: InstallReport
) -> None:
    try:
        data = (src / spec.source).read_bytes()
    except OSError as exc:
        raise ProvisionError(f"{src / spec.source}: {exc.strerror}") from None
    if spec.template:
        data = data.replace(b"@KYUKYU@", os.fsencode(exe))
    if spec.keep and layout.host(spec.dest).exists():
        return
    if write_if_changed(layout.host(spec.dest), data, mode=spec.mode, uid=0, gid=0):
        report.changed.append(spec.dest)
