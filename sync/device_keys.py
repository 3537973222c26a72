"""The hospital's view of device keys: what a sealed case's signature is checked against.

``HubDeviceKeys`` is the ``device_key_for`` of a ``Receiver``: it asks the hub for
a device's enrolled key (``GET /v1/devices/{id}/key``), checks the hub's
signature over the answer against the pinned hub key, and caches it with the rest
of the document (``VouchedDevice``: the fire department the device was enrolled for).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._errors import NotFound, ResponseError
from .client import verify_hub_signature
from .signing import public_key_from_b64

__all__ = ["HubDeviceKeys", "VouchedDevice"]


class _Json(Protocol):
    def request_json(self, method: str, path: str, **kwargs: object) -> object: ...


class _HasHttp(Protocol):
    @property
    def http(self) -> _Json: ...


@dataclass(frozen=True)
class VouchedDevice:
    """What the platform's signed device-key document says of a device.

    ``fire_department`` is the one the operator enrolled the device for: the sender a
    hospital shows, whatever a case says inside. ``public_key`` is None for a revoked
    device when revoked devices are refused.
    """

    device_id: str
    public_key: Ed25519PublicKey | None
    fire_department: str | None
    revoked: bool


class HubDeviceKeys:
    """``device_id -> Ed25519PublicKey | None``, from the hub, signature-checked, cached.

    Unknown devices give ``None`` (the case is then refused as from an unknown
    device); with ``refuse_revoked`` so do devices the hub marks revoked.
    Network failures raise ``PlatformError``: the receiver does not record the
    event and takes it again after reconnecting. ``vouched`` gives the whole
    document (the enrolled fire department too) from the same cache.
    """

    def __init__(
        self,
        client: _HasHttp,
        hub_public_key: Ed25519PublicKey,
        *,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        refuse_revoked: bool = False,
    ) -> None:
        self._client = client
        self._hub_key = hub_public_key
        self._ttl = ttl_seconds
        self._clock = clock
        self._refuse_revoked = refuse_revoked
        self._cache: dict[str, tuple[float, VouchedDevice | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, device_id: str) -> Ed25519PublicKey | None:
        vouched = self.vouched(device_id)
        return None if vouched is None else vouched.public_key

    def vouched(self, device_id: str) -> VouchedDevice | None:
        """The platform's signed word on ``device_id`` (None: unknown to the platform)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(device_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            doc = self._client.http.request_json(
                "GET", f"/v1/devices/{quote(device_id, safe='')}/key"
            )
        except NotFound:
            return None
        if not isinstance(doc, dict):
            raise ResponseError("device key answer is not an object")
        body = verify_hub_signature(doc, "device", self._hub_key)
        if body.get("device_id") != device_id:
            raise ResponseError("device key answer is for another device")
        department = body.get("fire_department")
        revoked = bool(body.get("revoked"))
        key: Ed25519PublicKey | None = None
        if not (self._refuse_revoked and revoked):
            try:
                key = public_key_from_b64(str(body["public_key"]))
            except (KeyError, ValueError) as exc:
                raise ResponseError("malformed device key") from exc
        # Otherwise the platform vouches that this device is revoked: its cases are refused.
        vouched = VouchedDevice(
            device_id=device_id,
            public_key=key,
            fire_department=department[:200] if isinstance(department, str) else None,
            revoked=revoked,
        )
        with self._lock:
            self._cache[device_id] = (now, vouched)
        return vouched
