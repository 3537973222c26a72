"""``kyukyu provision enroll`` and ``retire``: the device's identity with the platform.

Enroll: a new Ed25519 device key (0600, owned by the service user, in the
credentials directory the edge unit loads it from), the platform's signing key
and TLS CA pinned, the one-time token redeemed, the hub-signed hospital
directory and revocation snapshot fetched and checked against the pinned key,
the settings file written.

Retire: refuses while sealed cases wait in the outbox (``force`` overrides),
asks the platform to revoke the device (a technician's or operator's signed
request: the device cannot revoke itself), then wipes the key, the outbox and
every other state file, and removes the enrollment from the settings file.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.jpki import JpkiError
from edge.jpki.revocation import RevocationSnapshot
from edge.settings import DeviceSettings
from sync import PlatformError, SignedHttp
from sync.client import PlatformClient, verify_hub_signature
from sync.outbox import Outbox
from sync.platform_url import platform_url_is_secure
from sync.signed import b64d
from sync.signing import public_key_from_b64, public_key_to_b64

from ._config import read_settings, update_config
from ._layout import (
    CREDENTIALS_DIR,
    DATA_DIR,
    DEVICE_KEY,
    HUB_CA,
    SERVICE_USER,
    DeviceLayout,
    ProvisionError,
    ensure_dir,
    write_if_changed,
)

__all__ = [
    "EnrollReport",
    "RefreshReport",
    "RetireReport",
    "enroll",
    "load_device_key",
    "load_snapshot",
    "refresh",
    "refresh_device",
    "retire",
    "unsent_cases",
]

_ENROLLMENT_KEYS = ("hub_url", "device_id", "hub_public_key", "hub_ca_file", "enrolled_at")


@dataclass
class EnrollReport:
    device_id: str
    hub_url: str
    hub_key_id: str | None
    hospitals: int
    revocation_version: int | None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class RetireReport:
    device_id: str | None
    revoked_on_platform: bool
    unsent_discarded: int
    wiped: list[str] = field(default_factory=list)
    warning: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _check_url(hub_url: str, ca_file: Path | None) -> None:
    # The one rule (sync.platform_url), shared with `kyukyu hospital init`.
    if not platform_url_is_secure(hub_url):
        raise ProvisionError("the platform URL must be https:// (http only on this machine)")
    if urlsplit(hub_url).scheme == "https" and ca_file is None:
        raise ProvisionError("an https platform needs its TLS CA: give --ca FILE")


def _pem_key(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_snapshot(data: bytes, hub_key: Ed25519PublicKey) -> RevocationSnapshot:
    """A KKRV revocation snapshot whose signature is the pinned hub key's (else ProvisionError)."""

    def check(payload: bytes, signature: bytes) -> None:
        try:
            hub_key.verify(signature, payload)
        except InvalidSignature:
            raise ProvisionError("revocation snapshot not signed by the platform") from None

    try:
        return RevocationSnapshot.from_bytes(data, verify_signature=check)
    except JpkiError as exc:
        raise ProvisionError(f"revocation snapshot unreadable ({exc.code})") from None


def load_device_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ProvisionError(f"no device key at {path}") from None
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"unreadable device key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProvisionError(f"{path} is not an Ed25519 key")
    return key


def _signed_json(
    client: PlatformClient, path: str, field_name: str, **params: Any
) -> dict[str, Any]:
    doc = client.http.request_json("GET", path, params=params or None)
    if not isinstance(doc, dict) or client.hub_public_key is None:
        raise ProvisionError(f"{path}: not a signed document")
    verify_hub_signature(doc, field_name, client.hub_public_key)
    return doc


def enroll(
    layout: DeviceLayout,
    *,
    hub_url: str,
    token: str,
    name: str,
    ca_file: Path | None = None,
    expect_hub_key: str | None = None,
    force: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> EnrollReport:
    """Enroll this device with the platform at ``hub_url`` using a one-time ``token``."""
    settings = read_settings(layout)
    if settings.enrolled and not force:
        raise ProvisionError(
            f"already enrolled as {settings.device_id}: run `kyukyu provision retire` first"
        )
    if settings.enrolled and unsent_cases(layout):
        raise ProvisionError(
            "sealed cases of the current enrollment are not sent yet: let them leave, or "
            "`kyukyu provision retire --force` first"
        )
    _check_url(hub_url, ca_file)
    user = layout.user(SERVICE_USER)
    files: list[str] = []

    # The platform's TLS CA: pinned for every later request of the device.
    ca_host: Path | None = None
    if ca_file is not None:
        try:
            ca_pem = ca_file.read_bytes()
            ssl.create_default_context(cadata=ca_pem.decode("ascii"))
        except (OSError, UnicodeDecodeError, ssl.SSLError) as exc:
            raise ProvisionError(f"{ca_file}: not a readable PEM CA ({exc})") from None
        ca_host = layout.host(HUB_CA)
        write_if_changed(ca_host, ca_pem, mode=0o644, uid=0, gid=0)
        files.append(str(HUB_CA))

    key = Ed25519PrivateKey.generate()
    client = PlatformClient(hub_url.rstrip("/"), key=key, ca_file=ca_host, transport=transport)
    key_host = layout.host(DEVICE_KEY)
    try:
        with client:
            hub_key = client.fetch_hub_key()
            hub_key_b64 = public_key_to_b64(hub_key)
            if expect_hub_key is not None and expect_hub_key.strip() != hub_key_b64:
                raise ProvisionError(
                    "the platform's signing key is not the one expected (--expect-hub-key)"
                )
            # The key is on disk (0600, service user) before the platform knows it.
            ensure_dir(layout.host(CREDENTIALS_DIR), mode=0o700, uid=0, gid=0)
            write_if_changed(key_host, _pem_key(key), mode=0o600, uid=user.uid, gid=user.gid)
            files.append(str(DEVICE_KEY))
            try:
                device_id = client.enroll(token, name)
            except BaseException:
                key_host.unlink(missing_ok=True)
                raise
            client.hub_public_key = hub_key
            directory = _signed_json(
                client,
                "/v1/hospitals/directory",
                "directory",
                lat=settings.base_lat,
                lon=settings.base_lon,
            )
            kkrv = client.http.request("GET", "/v1/revocation/snapshot.kkrv").content
            snapshot = load_snapshot(kkrv, hub_key)
    except PlatformError as exc:
        raise ProvisionError(f"platform: {exc.code}: {exc}") from None

    data = layout.host(DATA_DIR)
    ensure_dir(data, mode=0o700, uid=user.uid, gid=user.gid)
    stored: dict[str, bytes] = {
        settings.directory_path.name: json.dumps(
            directory, ensure_ascii=False, sort_keys=True
        ).encode(),
        settings.revocation_path.name: kkrv,
    }
    for fname, raw in stored.items():
        write_if_changed(data / fname, raw, mode=0o600, uid=user.uid, gid=user.gid)
        files.append(f"{DATA_DIR}/{fname}")
    update_config(
        layout,
        {
            "hub_url": hub_url.rstrip("/"),
            "device_id": device_id,
            "hub_public_key": hub_key_b64,
            "hub_ca_file": str(HUB_CA) if ca_file is not None else None,
            "device_key_file": str(DEVICE_KEY),
            "data_dir": str(DATA_DIR),
            "enrolled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    _systemctl(layout, "try-restart", "kyukyu-edge.service")  # picks up the new identity
    hospitals = directory.get("directory", {}).get("hospitals", [])
    return EnrollReport(
        device_id=device_id,
        hub_url=hub_url.rstrip("/"),
        hub_key_id=str(directory.get("key_id")) if directory.get("key_id") else None,
        hospitals=len(hospitals) if isinstance(hospitals, list) else 0,
        revocation_version=snapshot.sequence,
        files=files,
    )


@dataclass
class RefreshReport:
    hospitals: int
    revocation_version: int
    previous_version: int | None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def refresh(layout: DeviceLayout, *, transport: httpx.BaseTransport | None = None) -> RefreshReport:
    """Fetch the hospital directory and revocation snapshot again (the kyukyu-refresh timer).

    Both must carry the pinned hub key's signature; a snapshot older than the one on
    the device (a lower sequence number) is refused, so a replayed answer cannot
    un-revoke a certificate. The files belong to the service user.
    """
    settings = read_settings(layout)
    user = layout.user(SERVICE_USER) if settings.enrolled else None
    return refresh_device(
        settings,
        host=layout.host,
        owner=(user.uid, user.gid) if user else None,
        transport=transport,
    )


def refresh_device(
    settings: DeviceSettings,
    *,
    host: Callable[[Path], Path] = Path,
    owner: tuple[int, int] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RefreshReport:
    """``refresh`` for the device ``settings`` describe: its files under ``host(path)``,
    owned by ``owner`` (uid, gid; default this process's). ``kyukyu demo`` stores its
    device's directory and snapshot with it, as a provisioned device has them."""
    if not settings.enrolled or settings.hub_url is None or settings.hub_public_key is None:
        raise ProvisionError("not enrolled: run `kyukyu provision enroll` first")
    uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
    hub_key = public_key_from_b64(settings.hub_public_key)
    key = load_device_key(host(settings.key_file))
    ca = host(settings.hub_ca_file) if settings.hub_ca_file else None
    snap_path = host(settings.revocation_path)
    previous: int | None = None
    try:
        previous = load_snapshot(snap_path.read_bytes(), hub_key).sequence
    except (OSError, ProvisionError):
        previous = None
    client = PlatformClient(
        settings.hub_url,
        key=key,
        device_id=settings.device_id,
        hub_public_key=hub_key,
        ca_file=ca,
        transport=transport,
    )
    try:
        with client:
            directory = _signed_json(
                client,
                "/v1/hospitals/directory",
                "directory",
                lat=settings.base_lat,
                lon=settings.base_lon,
            )
            kkrv = client.http.request("GET", "/v1/revocation/snapshot.kkrv").content
    except PlatformError as exc:
        raise ProvisionError(f"platform: {exc.code}: {exc}") from None
    snapshot = load_snapshot(kkrv, hub_key)
    if previous is not None and snapshot.sequence < previous:
        raise ProvisionError(
            f"revocation snapshot #{snapshot.sequence} is older than the device's #{previous}"
        )
    raw = json.dumps(directory, ensure_ascii=False, sort_keys=True).encode()
    write_if_changed(host(settings.directory_path), raw, mode=0o600, uid=uid, gid=gid)
    write_if_changed(snap_path, kkrv, mode=0o600, uid=uid, gid=gid)
    hospitals = directory.get("directory", {}).get("hospitals", [])
    return RefreshReport(
        hospitals=len(hospitals) if isinstance(hospitals, list) else 0,
        revocation_version=snapshot.sequence,
        previous_version=previous,
    )


def _systemctl(layout: DeviceLayout, verb: str, *units: str) -> None:
    """On the running device only (never for a staging root); failures are not fatal."""
    if not layout.is_live or not Path("/run/systemd/system").is_dir():
        return
    import subprocess

    subprocess.run(["systemctl", verb, *units], check=False, capture_output=True, timeout=60)


def _staff_http(
    staff_key_file: Path, base_url: str, ca_file: Path | None, transport: httpx.BaseTransport | None
) -> SignedHttp:
    """A signed client for a technician's or operator's key (``kyukyu hub init`` format)."""
    try:
        doc = json.loads(staff_key_file.read_text(encoding="utf-8"))
        key = Ed25519PrivateKey.from_private_bytes(b64d(str(doc["private_key"])))
        key_id = str(doc["key_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProvisionError(f"{staff_key_file}: not a staff key file ({exc})") from None
    return SignedHttp(base_url, key=key, key_id=key_id, ca_file=ca_file, transport=transport)


def unsent_cases(layout: DeviceLayout) -> int:
    """Sealed cases still waiting in the outbox (0 when there is no outbox)."""
    settings = read_settings(layout)
    path = layout.host(settings.outbox_path)
    if not path.exists():
        return 0
    with Outbox(path) as outbox:
        return outbox.pending_count()


def retire(
    layout: DeviceLayout,
    *,
    staff_key_file: Path | None,
    force: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> RetireReport:
    """Revoke the device on the platform and wipe its keys and state."""
    settings = read_settings(layout)
    pending = unsent_cases(layout)
    if pending and not force:
        raise ProvisionError(
            f"{pending} sealed case(s) not sent yet: let them leave (network), or use --force"
        )
    report = RetireReport(settings.device_id, False, pending)
    if settings.enrolled and settings.hub_url and settings.device_id:
        ca = layout.host(settings.hub_ca_file) if settings.hub_ca_file else None
        problem: str | None = None
        if staff_key_file is None:
            problem = "no --staff-key given"
        else:
            try:
                with _staff_http(staff_key_file, settings.hub_url, ca, transport) as http:
                    http.request(
                        "POST", f"/v1/devices/{quote(settings.device_id, safe='')}/revoke", body={}
                    )
                report.revoked_on_platform = True
            except PlatformError as exc:
                problem = f"{exc.code}: {exc}"
        if problem is not None:
            if not force:
                raise ProvisionError(f"the platform did not revoke the device ({problem})")
            report.warning = (
                f"device {settings.device_id} is NOT revoked on the platform ({problem}): "
                "revoke it there"
            )
    # On the device itself the service must not hold the outbox while it goes.
    _systemctl(layout, "stop", "kyukyu-kiosk.service", "kyukyu-edge.service")
    # Wipe: the key, then every state file (outbox, directory, snapshot, cursors).
    key = layout.host(settings.key_file)
    for path in (key, layout.host(HUB_CA)):
        if path.exists():
            path.unlink()
            report.wiped.append(str(path))
    data = layout.host(settings.data_dir)
    if data.is_dir():
        for entry in sorted(data.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            report.wiped.append(str(entry))
    update_config(layout, dict.fromkeys(_ENROLLMENT_KEYS))
    os.sync()
    return report
