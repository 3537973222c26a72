"""The platform's trust bundle and its certificate check for devices.

The trust bundle lets devices learn roots and CVC CA keys without a software
release: ``{"trust_bundle": body, "key_id", "signature"}`` signed by the hub key
(``sync.signed``), body::

    {"format": "kyukyu-trust-bundle-v1", "version": N, "issued_at": ISO,
     "roots": [{"name", "purpose", "sha256", "not_after", "test", "certificate"}],
     "cvc_ca_keys": [{"name", "key_id", "public_key", "not_after", "test"}]}

It lists what the platform itself trusts (its roots directory: pinned roots, the
operator's ``pins.json`` additions, test roots in test mode). ``version`` comes
from ``pins.json`` and only grows; devices refuse a lower one. ``certificate``
is base64 DER, ``public_key`` base64 SubjectPublicKeyInfo DER, ``key_id`` 32 hex.

The certificate check verifies a patient certificate the device could not
(its issuer is not pinned there) against the platform's roots, and answers with a
signed ``certificate_check`` document the device checks against the pinned hub key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge.jpki.trust import PINNED_CVC_CA_KEYS, PINS_FILE, TrustStore, read_operator_pins
from hub_server.core.certs import CertificateVerifier
from hub_server.core.errors import HubError, InvalidInput, Unavailable
from hub_server.core.state import HubState
from sync.signed import b64e

__all__ = ["BUNDLE_FORMAT", "bundle_body", "check_certificate"]

BUNDLE_FORMAT = "kyukyu-trust-bundle-v1"


def _verifier(hub: HubState) -> tuple[CertificateVerifier, TrustStore]:
    verifier = hub.verifier
    if verifier is None or verifier.store is None:
        raise Unavailable(
            "no_trust_roots",
            "the platform has no usable trust roots",
            "サーバーに有効な信頼済みルート証明書がありません。",
        )
    return verifier, verifier.store


def _version(hub: HubState) -> int:
    directory = hub.settings.trust_roots_dir
    if directory is None or not (directory / PINS_FILE).is_file():
        return 0
    return read_operator_pins((directory / PINS_FILE).read_bytes()).version


def bundle_body(hub: HubState, *, now: datetime | None = None) -> dict[str, Any]:
    """The unsigned body of the platform's current trust bundle."""
    _, store = _verifier(hub)
    roots = [
        {
            "name": a.name,
            "purpose": a.purpose,
            "sha256": a.sha256,
            "not_after": a.certificate.not_valid_after_utc.date().isoformat(),
            "test": a.test,
            "certificate": b64e(a.certificate.public_bytes(Encoding.DER)),
        }
        for a in sorted(store.anchors, key=lambda a: a.sha256)
    ]
    keys = [
        {
            "name": k.name,
            "key_id": k.key_id_hex,
            "public_key": b64e(
                k.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            ),
            "test": k.test,
        }
        for k in sorted(store.cvc_keys.values(), key=lambda k: k.key_id)
        if k.key_id not in PINNED_CVC_CA_KEYS  # built into every device already
    ]
    return {
        "format": BUNDLE_FORMAT,
        "version": _version(hub),
        "issued_at": (now or datetime.now(UTC)).replace(microsecond=0).isoformat(),
        "roots": roots,
        "cvc_ca_keys": keys,
    }


def check_certificate(hub: HubState, der: bytes, *, now: datetime | None = None) -> dict[str, Any]:
    """Verify ``der`` against the platform's roots; the unsigned ``certificate_check`` body.

    ``status`` is ``verified_by_platform`` or ``untrusted`` (with the trust check's
    ``error``); either way the answer is signed, so a device can tell it came from here.
    """
    import hashlib

    verifier, _ = _verifier(hub)
    t = now or datetime.now(UTC)
    body: dict[str, Any] = {
        "certificate_sha256": hashlib.sha256(der).hexdigest(),
        "checked_at": t.replace(microsecond=0).isoformat(),
    }
    try:
        verifier.verify(der, now=t)
    except Unavailable:
        raise
    except InvalidInput as exc:
        return {**body, "status": "untrusted", "error": _error(exc)}
    return {**body, "status": "verified_by_platform", "error": None}


def _error(exc: HubError) -> dict[str, str]:
    return {"code": exc.code, "message_ja": exc.message_ja, "message_en": exc.message_en}
