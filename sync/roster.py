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

A revocation, once held, is kept for good (the platform has no un-revoke): a device
revoked in any roster this hospital accepted stays refused even when a later roster
lists it unrevoked, as one does after the hub's database went back to a backup taken
before the revocation. The ids are kept beside the roster (``<roster>.revoked``, 0600).
"""

from __future__ import annotations

import json
import logging
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

log = logging.getLogger("sync.roster")


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
        self._held: dict[str, Any] | None = None  # the held roster's body, but its issue time
        self._revoked = self._read_revoked()
        if path.exists():
            try:
                self._take(json.loads(path.read_text()))
            except (ValueError, ResponseError):
                # A damaged file is no roster: the next fetch replaces it.
                self._version, self._devices, self._held = -1, {}, None

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

    @property
    def _revoked_path(self) -> Path:
        return self.path.with_name(self.path.name + ".revoked")

    def _read_revoked(self) -> frozenset[str]:
        try:
            ids = json.loads(self._revoked_path.read_text())
        except FileNotFoundError:
            return frozenset()
        except ValueError:  # damaged: what the rosters say is all there is
            log.warning(
                "kept device revocations unreadable (%s); the roster's own are used",
                self._revoked_path.name,
            )
            return frozenset()
        return frozenset(str(i) for i in ids) if isinstance(ids, list) else frozenset()

    def _keep_revoked(
        self, devices: dict[str, VouchedDevice]
    ) -> tuple[frozenset[str], dict[str, VouchedDevice]]:
        """Every revocation held so far and in ``devices``; ``devices`` with those revoked."""
        revoked = self._revoked | {i for i, d in devices.items() if d.revoked}
        for device_id in revoked & devices.keys():
            device = devices[device_id]
            if not device.revoked:
                devices[device_id] = VouchedDevice(
                    device_id=device_id,
                    public_key=None,
                    fire_department=device.fire_department,
                    revoked=True,
                )
        return revoked, devices

    def _take(self, document: Any) -> None:
        version, devices = self._parse(document)
        self._revoked, self._devices = self._keep_revoked(devices)
        self._version, self._held = version, _unissued(document)

    def accept(self, document: Any) -> int:
        """Check and keep a signed roster document; its version.

        ``BadHubSignature`` / ``ResponseError`` for a document that does not verify or
        parse, ``SnapshotRollback`` for one older than the roster held (nothing changes).
        """
        version, devices = self._parse(document)
        held = _unissued(document)
        with self._lock:
            if version < self._version:
                raise SnapshotRollback(f"roster version {version} < {self._version}")
            if version == self._version and held == self._held:
                return version  # the roster held, issued again: nothing to write
            revoked, devices = self._keep_revoked(devices)
            # The revocations first: a crash between the two writes keeps them all.
            _write_0600(self._revoked_path, sorted(revoked))
            _write_0600(self.path, document)
            self._version, self._devices, self._revoked = version, devices, revoked
            self._held = held
        return version

    def vouched(self, device_id: str) -> VouchedDevice | None:
        """The roster's word on ``device_id`` (None: not in the roster)."""
        with self._lock:
            return self._devices.get(device_id)

    def __call__(self, device_id: str) -> Ed25519PublicKey | None:
        """The key to check ``device_id``'s signatures with; None: unknown or revoked."""
        vouched = self.vouched(device_id)
        return None if vouched is None else vouched.public_key


def _unissued(document: dict[str, Any]) -> dict[str, Any]:
    """A verified roster's body without its issue time (the hub signs every fetch anew):
    equal for the same roster issued twice."""
    return {k: v for k, v in document["roster"].items() if k != "issued_at"}


def _write_0600(path: Path, value: Any) -> None:
    """``value`` as JSON in ``path``, replaced atomically (0600, synced)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, separators=(",", ":"), ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
