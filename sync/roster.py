"""The hub-signed device roster: how a hospital trusts a device without the platform.

While the platform is up, a hospital fetches ``GET /v1/devices/roster`` (every enrolled
device: id, Ed25519 key, fire department, revoked), checks the hub's signature against
its pinned hub key and keeps the document on disk. On the direct route (docs/disaster.md)
it is the only word on a device: an unknown or revoked device is refused.

The roster's ``version`` only grows (each enrollment and each revocation adds one, a
restore of the hub's database its event gap: ``hub_server.services.device_roster``). A
roster older than the one held is refused with ``SnapshotRollback`` and changes nothing,
like the revocation snapshot on the device: a replayed old roster cannot un-revoke a
device.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync._errors import ResponseError, SnapshotRollback
from sync.device_keys import VouchedDevice
from sync.signed import verify_document
from sync.signing import public_key_from_b64

__all__ = ["ROSTER_FORMAT", "DeviceRoster"]

ROSTER_FORMAT = "kyukyu-roster-v1"


class DeviceRoster:
    """The last accepted roster, kept in ``path`` (JSON, the signed document as received).

    ``vouched(device_id)`` answers like ``sync.HubDeviceKeys.vouched`` but from the held
    roster alone: None for an unknown device, ``public_key`` None for a revoked one.
    """

    def __init__(self, path: Path, hub_public_key: Ed25519PublicKey) -> None:
        self.path = path
        self._hub_key = hub_public_key
        self._lock = threading.Lock()
        self._version = -1
        self._devices: dict[str, VouchedDevice] = {}
        if path.exists():
            try:
                self._take(json.loads(path.read_text()))
            except (ValueError, ResponseError):
                # A damaged file is no roster: the next fetch replaces it.
                self._version, self._devices = -1, {}

    @property
    def version(self) -> int:
        """The version held (-1: none yet)."""
        return self._version

    def __len__(self) -> int:
        return len(self._devices)

    def _parse(self, document: Any) -> tuple[int, dict[str, VouchedDevice]]:
        if not isinstance(document, dict):
            raise ResponseError("roster answer is not an object")
        body = verify_document(document, "roster", self._hub_key)
        version = body.get("version")
        if body.get("format") != ROSTER_FORMAT or type(version) is not int or version < 0:
            raise ResponseError("not a device roster")
        devices: dict[str, VouchedDevice] = {}
        entries = body.get("devices")
        if not isinstance(entries, list):
            raise ResponseError("roster without devices")
        for entry in entries:
            try:
                device_id = str(entry["id"])
                revoked = entry["revoked"] is True
                department = entry.get("fire_department")
                key = None if revoked else public_key_from_b64(str(entry["public_key"]))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # one bad entry (signed nonsense) does not cost the others
            devices[device_id] = VouchedDevice(
                device_id=device_id,
                public_key=key,
                fire_department=department[:200] if isinstance(department, str) else None,
                revoked=revoked,
            )
        return version, devices

    def _take(self, document: Any) -> None:
        self._version, self._devices = self._parse(document)

    def accept(self, document: Any) -> int:
        """Check and keep a signed roster document; its version.

        ``BadHubSignature`` / ``ResponseError`` for a document that does not verify or
        parse, ``SnapshotRollback`` for one older than the roster held (nothing changes).
        """
        version, devices = self._parse(document)
        with self._lock:
            if version < self._version:
                raise SnapshotRollback(f"roster version {version} < {self._version}")
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(document, f, separators=(",", ":"), ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._version, self._devices = version, devices
        return version

    def vouched(self, device_id: str) -> VouchedDevice | None:
        """The roster's word on ``device_id`` (None: not in the roster)."""
        with self._lock:
            return self._devices.get(device_id)

    def __call__(self, device_id: str) -> Ed25519PublicKey | None:
        """The key to check ``device_id``'s signatures with; None: unknown or revoked."""
        vouched = self.vouched(device_id)
        return None if vouched is None else vouched.public_key
