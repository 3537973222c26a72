"""Where a device's files live, on the device itself or under a staging root.

Every path a technician command writes is a *device path* (``/etc/kyukyu/...``):
that is what goes into unit files and the settings file. ``DeviceLayout.host``
maps it under the root the command operates on (``/`` on the device, a
directory for a staging image or a test).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from errbase import KyukyuError
from errbase.paths import (
    CREDENTIALS_DIR,
    EDGE_CONFIG,
    EDGE_DATA_DIR,
    JPKI_ROOTS_DIR,
    PLATFORM_CA,
)

__all__ = [
    "CONFIG",
    "CREDENTIALS_DIR",
    "DATA_DIR",
    "DEVICE_KEY",
    "HUB_CA",
    "KIOSK_USER",
    "ROOTS_DIR",
    "SERVICE_USER",
    "DeviceLayout",
    "ProvisionError",
    "hardware_dir",
]

SERVICE_USER = "kyukyu-edge"
KIOSK_USER = "kyukyu-kiosk"
CONFIG = EDGE_CONFIG
DEVICE_KEY = CREDENTIALS_DIR / "edge-device-key.pem"
HUB_CA = PLATFORM_CA
ROOTS_DIR = JPKI_ROOTS_DIR
DATA_DIR = EDGE_DATA_DIR


class ProvisionError(KyukyuError):
    """A provisioning step cannot be done; ``detail`` says which and why."""

    code = "provision_failed"
    message_ja = "端末の設定作業を完了できませんでした。"
    message_en = "Provisioning failed."


def hardware_dir() -> Path:
    """The hardware files (udev, modprobe, systemd, sysusers.d): package data of
    ``edge.provision`` (``importlib.resources``), or ``KYUKYU_HARDWARE_DIR``."""
    env = os.environ.get("KYUKYU_HARDWARE_DIR")
    # A wheel installs as files on disk: the traversable is a real directory.
    found = Path(env) if env else Path(str(resources.files("edge.provision") / "hardware"))
    if (found / "systemd").is_dir():
        return found
    raise ProvisionError(
        f"hardware files not found in {found}: reinstall kyukyu, or set KYUKYU_HARDWARE_DIR"
    )


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class DeviceLayout:
    """A device's file tree under ``root`` (``/`` for the device itself)."""

    root: Path = Path("/")

    def host(self, device_path: str | os.PathLike[str]) -> Path:
        """The path on this machine of ``device_path`` (absolute on the device)."""
        p = PurePosixPath(os.fspath(device_path))
        if not p.is_absolute():
            return Path(p)  # relative paths are the caller's own (tests, overrides)
        if self.root == Path("/"):
            return Path(p)
        return self.root / p.relative_to("/")

    @property
    def is_live(self) -> bool:
        return self.root.resolve() == Path("/")

    @property
    def config(self) -> Path:
        return self.host(CONFIG)

    def user(self, name: str) -> User:
        """Look ``name`` up in the root's ``/etc/passwd`` (what systemd-sysusers wrote)."""
        passwd = self.host("/etc/passwd")
        try:
            lines = passwd.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            parts = line.split(":")
            if len(parts) >= 4 and parts[0] == name:
                return User(name, int(parts[2]), int(parts[3]))
        raise ProvisionError(f"no user {name} in {passwd}: run `kyukyu provision install` first")


def write_if_changed(path: Path, data: bytes, *, mode: int, uid: int, gid: int) -> bool:
    """Write ``data`` atomically unless the file already holds it; fix mode and owner.

    Returns True when anything (content, mode, owner) changed.
    """
    changed = False
    try:
        same = path.read_bytes() == data
    except (FileNotFoundError, IsADirectoryError):
        same = False
    if not same:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            os.fchown(fd, uid, gid)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True
    st = path.stat()
    if st.st_mode & 0o7777 != mode:
        path.chmod(mode)
        changed = True
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        changed = True
    return changed


def ensure_dir(path: Path, *, mode: int, uid: int, gid: int) -> bool:
    changed = False
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        changed = True
    st = path.stat()
    if st.st_mode & 0o7777 != mode:
        path.chmod(mode)
        changed = True
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        changed = True
    return changed


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def which(name: str) -> str | None:
    return shutil.which(name)
