"""The device's platform client: every call the ambulance makes to the hub.

Usage::

    client = PlatformClient("https://hub.example", key=device_key, device_id="ab12...",
                            ca_file="/etc/kyukyu/platform-ca.pem", hub_public_key=pinned)
    client.post_case(case_id, recipients, sealed, idempotency_key=key)

Requests are signed (``sync.signing``), time-limited, and go over TLS that
trusts only the pinned platform CA. Errors are the ``PlatformError`` subtree of
``sync._errors``. The transport is injectable (``httpx.MockTransport``,
``httpx.ASGITransport`` with a WSGI bridge, or the real network).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from sync._errors import ResponseError, SnapshotRollback
from sync._http import REVOKED, SignedHttp, stream_event
from sync.envelope import SealedCase, envelope_to_text
from sync.seal import SealingKeys
from sync.signed import b64d, verify_document
from sync.signing import public_key_from_b64, public_key_to_b64
from sync.xwing import XWingPublicKey

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DeviceEvent",
    "DirectoryHospital",
    "HospitalDirectory",
    "MemoryRevocationFloor",
    "PlatformClient",
    "RevocationFloor",
    "parse_directory",
    "verify_hub_signature",
]


def verify_hub_signature(
    document: Mapping[str, Any], field: str, hub_key: Ed25519PublicKey
) -> dict[str, Any]:
    """Check a hub-signed document ``{field: body, key_id, signature}``; return ``body``.

    ``sync.signed.verify_document``: Ed25519 by the hub key over the RFC 8785 bytes of
    ``body`` (docs/envelope.md). Raises ``BadHubSignature`` (a ``ResponseError``).
    """
    return verify_document(document, field, hub_key)


class RevocationFloor(Protocol):
    """Where a device keeps the last revocation snapshot version it accepted (durably:
    ``sync.outbox.Outbox`` is one)."""

    def revocation_version(self) -> int: ...

    def accept_revocation_version(self, version: int) -> None:
        """Store ``version``; raise ``SnapshotRollback`` if it is lower than the stored one."""
        ...


class MemoryRevocationFloor:
    """A ``RevocationFloor`` for one process (tests, tools): forgets on exit."""

    def __init__(self, version: int = 0) -> None:
        self._version = version
        self._lock = threading.Lock()

    def revocation_version(self) -> int:
        return self._version

    def accept_revocation_version(self, version: int) -> None:
        with self._lock:
            if version < self._version:
                raise SnapshotRollback(f"version {version} < {self._version}")
            self._version = version


@dataclass(frozen=True)
class DirectoryHospital:
    id: str
    name: str
    lat: float
    lon: float
    hpke_public_key: X25519PublicKey
    distance_km: float | None = None
    # The direct route (docs/disaster.md): set only where the region opted in.
    direct_url: str | None = None
    direct_tls_cert: str | None = None
    # The hybrid (X-Wing) key envelope v2 is sealed to; None: the hospital has not
    # published one (docs/envelope.md, "Keys in the directory").
    xwing_public_key: XWingPublicKey | None = None

    @property
    def key_kinds(self) -> tuple[str, ...]:
        return ("x25519", "xwing") if self.xwing_public_key is not None else ("x25519",)

    @property
    def sealing_keys(self) -> SealingKeys:
        """Its keys for ``seal_case``: v2 when every recipient has the hybrid one."""
        return SealingKeys(x25519=self.hpke_public_key, xwing=self.xwing_public_key)


class HospitalDirectory(list[DirectoryHospital]):
    """The hospitals of a hub-signed directory, nearest first, and the platform's policy:
    ``require_pq`` (``KYUKYU_HUB_REQUIRE_PQ``): the platform takes v2 envelopes only, so a
    device never seals v1 and reaches a hospital without a hybrid key by phone only."""

    def __init__(self, hospitals: Iterable[DirectoryHospital] = (), *, require_pq: bool = False):
        super().__init__(hospitals)
        self.require_pq = require_pq


def parse_directory(body: Mapping[str, Any]) -> HospitalDirectory:
    """The one reader of a directory body (its hub signature already checked): the
    platform's answer and the file stored at provisioning. ``ResponseError`` if a
    hospital lacks its id, name, place or X25519 key; a hybrid key that is not one is
    taken as absent (that hospital gets v1, or phone only under ``require_pq``)."""
    out = HospitalDirectory(require_pq=body.get("require_pq") is True)
    try:
        for h in body["hospitals"]:
            out.append(
                DirectoryHospital(
                    id=str(h["id"]),
                    name=str(h["name"]),
                    lat=float(h["lat"]),
                    lon=float(h["lon"]),
                    hpke_public_key=X25519PublicKey.from_public_bytes(b64d(h["hpke_public_key"])),
                    distance_km=h.get("distance_km"),
                    direct_url=_opt_str(h.get("direct_url")),
                    direct_tls_cert=_opt_str(h.get("direct_tls_cert")),
                    xwing_public_key=_xwing_key(h.get("xwing_public_key")),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResponseError("malformed directory") from exc
    return out


def _xwing_key(value: Any) -> XWingPublicKey | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return XWingPublicKey.from_bytes(b64d(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class DeviceEvent:
    """One event of the device's answer stream (``kind`` e.g. ``answer``)."""

    seq: int
    kind: str
    data: dict[str, Any]


class PlatformClient:
    """Every device call to the hub."""

    def __init__(
        self,
        base_url: str,
        *,
        key: Ed25519PrivateKey,
        device_id: str | None = None,
        hub_public_key: Ed25519PublicKey | None = None,
        ca_file: str | Path | None = None,
        verify: ssl.SSLContext | bool | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        revocation_floor: RevocationFloor | None = None,
    ) -> None:
        self._key = key
        self.device_id = device_id
        self.hub_public_key = hub_public_key
        self.revocation_floor: RevocationFloor = revocation_floor or MemoryRevocationFloor()
        self.http = SignedHttp(
            base_url,
            key=key,
            key_id=None if device_id is None else f"device:{device_id}",
            ca_file=ca_file,
            verify=verify,
            transport=transport,
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enrollment -------------------------------------------------------------------

    def enroll(self, token: str, name: str) -> str:
        """Register this device's public key with a one-time token; return the device id."""
        body = {
            "token": token,
            "public_key": public_key_to_b64(self._key.public_key()),
            "name": name,
        }
        out = self.http.request_json("POST", "/v1/devices/enroll", body=body, signed=False)
        device_id = out.get("device_id") if isinstance(out, dict) else None
        if not isinstance(device_id, str):
            raise ResponseError("enrollment answer has no device_id")
        self.device_id = device_id
        self.http.key_id = f"device:{device_id}"
        return device_id

    def device_status(self) -> dict[str, Any]:
        """This device as the platform holds it (``GET /v1/devices/me``: id, name, fire
        department, ``revoked``); a revoked device gets a 403 ``revoked`` instead."""
        return _json_object(self.http.request_json("GET", "/v1/devices/me"))

    def fetch_hub_key(self) -> Ed25519PublicKey:
        """The hub's signing key, for pinning at provisioning (over the pinned-CA TLS).

        Once pinned (``hub_public_key``), directory and revocation answers are
        checked against the pinned key, never against a freshly fetched one.
        """
        out = _json_object(self.http.request_json("GET", "/v1/hub-key", signed=False))
        try:
            return public_key_from_b64(str(out["public_key"]))
        except (KeyError, ValueError) as exc:
            raise ResponseError("malformed hub key") from exc

    # -- identity, summaries ----------------------------------------------------------

    def create_challenge(self, **fields: Any) -> dict[str, Any]:
        """A fresh challenge for the card to sign (``challenge_id``, ``nonce``, ``expires_at``)."""
        return _json_object(self.http.request_json("POST", "/v1/challenges", body=dict(fields)))

    def lookup_summary(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Ask for the emergency summary (certificate, consent, evidence, crew) -> FHIR Bundle."""
        return _json_object(self.http.request_json("POST", "/v1/summaries", body=dict(request)))

    # -- directory, revocation --------------------------------------------------------

    def _signed(self, document: Any, field: str) -> dict[str, Any]:
        if self.hub_public_key is None:
            raise ResponseError("no pinned hub key to check the signature with")
        return verify_hub_signature(_json_object(document), field, self.hub_public_key)

    def hospital_directory(self, lat: float, lon: float) -> HospitalDirectory:
        """Hospitals nearest first; the list's hub signature is checked against the pinned key."""
        doc = self._signed(
            self.http.request_json(
                "GET", "/v1/hospitals/directory", params={"lat": lat, "lon": lon}
            ),
            "directory",
        )
        return parse_directory(doc)

    def revocation_snapshot(self, since: int | None = None) -> dict[str, Any]:
        """The signed revocation snapshot (or the delta since version ``since``).

        Its ``version`` must not be lower than the last one accepted
        (``revocation_floor``): an older snapshot, even correctly signed, would
        un-revoke certificates, so it raises ``SnapshotRollback`` and is not returned.
        """
        params = {} if since is None else {"since": since}
        doc = self.http.request_json("GET", "/v1/revocation/snapshot", params=params)
        body = self._signed(doc, "snapshot")
        version = body.get("version")
        if type(version) is not int or version < 0:
            raise ResponseError("revocation snapshot without a version")
        if since is not None and version < since:
            raise SnapshotRollback(f"version {version} < since {since}")
        self.revocation_floor.accept_revocation_version(version)
        return body

    # -- cases ------------------------------------------------------------------------

    def post_case(
        self,
        case_id: str,
        recipients: list[str],
        envelope: bytes | SealedCase,
        *,
        idempotency_key: str,
        outbox_depth: int | None = None,
        route: str | None = None,
    ) -> dict[str, Any]:
        """Hand a sealed case to the platform (201; a replay of the same key answers the same).

        ``route`` ``direct``: the case reached its hospitals by the direct route while the
        platform was out and is reconciled now (``X-Kyukyu-Route``, audited; outside the
        body, so a retry of an earlier attempt is the same request).

        ``outbox_depth``: the unsent cases in the device's outbox, this one included, sent
        as ``X-Kyukyu-Outbox-Depth`` for the platform's metrics (a count, nothing more).
        """
        body = {
            "case_id": case_id,
            "recipients": recipients,
            "envelope": envelope_to_text(envelope),
        }
        headers = {"Idempotency-Key": idempotency_key}
        if outbox_depth is not None:
            # The platform takes 0..1,000,000 (a larger header would refuse the case).
            headers["X-Kyukyu-Outbox-Depth"] = str(min(max(0, outbox_depth), 1_000_000))
        if route == "direct":
            headers["X-Kyukyu-Route"] = "direct"
        response = self.http.request("POST", "/v1/cases", body=body, headers=headers)
        try:
            return _json_object(response.json()) if response.content else {}
        except ValueError:
            return {}

    def set_destination(self, case_id: str, hospital_id: str, via: str = "answer") -> None:
        """搬送先決定. ``via``: ``answer`` (the hospital answered 受入可; the platform checks)
        or ``phone`` (the crew confirmed the acceptance by phone)."""
        self.http.request(
            "POST",
            f"/v1/cases/{case_id}/destination",
            body={"hospital_id": hospital_id, "via": via},
        )

    def post_closure(
        self,
        case_id: str,
        recipients: list[str],
        envelope: bytes | SealedCase,
    ) -> None:
        """中止 / 不搬送: the sealed closure document (``sync.seal.seal_closure``) for the
        hospitals that were sent the case. A second closure is refused (409 ``case_closed``)."""
        self.http.request(
            "POST",
            f"/v1/cases/{case_id}/closure",
            body={"recipients": recipients, "envelope": envelope_to_text(envelope)},
        )

    def device_events(
        self,
        after: int = 0,
        stop: threading.Event | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> Iterator[DeviceEvent]:
        """The answers to this device's cases, after event number ``after``.

        Every event is checked by ``stream_event`` first: one that cannot be parsed
        raises ``MalformedEvent`` (the caller reconnects from its stored position, which
        has not moved past it). Ends at a ``revoked`` event (the next call is refused).
        """
        events = self.http.events(
            "/v1/devices/me/events", after=after, stop=stop, on_keepalive=on_keepalive
        )
        for sse in events:
            if sse.event == REVOKED:
                return
            if sse.event == AVAILABILITY:
                # Not numbered (no position of its own): its ``version`` orders it.
                yield DeviceEvent(seq=0, kind=AVAILABILITY, data=_availability_data(sse.data))
                continue
            if sse.event == INCIDENT:
                # A mass-casualty board (docs/mass-casualty.md): not numbered either.
                yield DeviceEvent(seq=0, kind=INCIDENT, data=_availability_data(sse.data))
                continue
            ev = stream_event(sse)
            yield DeviceEvent(seq=ev.seq, kind=ev.kind, data=ev.data)

    def availability(self, after: int = 0) -> dict[str, Any]:
        """応需状況 of the hospitals of this device's regions changed after version
        ``after``: ``{"version", "regions", "hospitals": [document, ...]}``."""
        return _json_object(
            self.http.request_json("GET", "/v1/availability", params={"after": after})
        )


AVAILABILITY = "availability"
INCIDENT = "incident"


def _availability_data(text: str) -> dict[str, Any]:
    """An availability event's document; {} when it is not JSON (the book drops it)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseError("expected a JSON object")
    return value
