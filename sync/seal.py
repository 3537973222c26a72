"""Seal a case for its recipient hospitals, and open it at one of them.

Sealing: a fresh 32-byte content key encrypts the FHIR JSON with AES-256-GCM;
HPKE base mode (RFC 9180) wraps that key for each hospital with case, device and
hospital bound in ``info``; the device signs the whole envelope with Ed25519.
The envelope version decides the HPKE suite:

- v1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, to the X25519 key;
- v2: MLKEM768-X25519 (X-Wing, post-quantum hybrid), HKDF-SHA256, AES-256-GCM, to
  the hospital's X-Wing key (``sync.xwing``).

A device seals v2 when every recipient has an X-Wing key and v1 otherwise
(``envelope_version_for``); a hospital opens each version with the key of its kind
(``OpeningKeys``), for as long as it keeps its X25519 key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import (
    AEAD,
    KDF,
    KEM,
    MLKEM768X25519PrivateKey,
    MLKEM768X25519PublicKey,
    Suite,
)

from sync._errors import (
    DecryptionFailed,
    MalformedEnvelope,
    NotARecipient,
    UnknownDevice,
    UnsupportedVersion,
    WrongKeyKind,
)
from sync.envelope import (
    NONCE_LEN,
    V1,
    V2,
    RecipientKey,
    SealedCase,
    aad_for,
    assemble,
    encode_header,
    hpke_info,
)
from sync.xwing import XWingPrivateKey, XWingPublicKey

__all__ = [
    "DeviceKeyLookup",
    "HospitalKey",
    "OpenedCase",
    "OpeningKeys",
    "RecipientKeys",
    "SealingKeys",
    "envelope_version_for",
    "open_case",
    "seal_case",
    "seal_json",
]

_SUITES = {
    V1: Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM),
    V2: Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM),
}


@dataclass(frozen=True)
class SealingKeys:
    """A recipient hospital's public keys, one field per kind it has published."""

    x25519: X25519PublicKey | None = None
    xwing: XWingPublicKey | None = None


@dataclass(frozen=True)
class OpeningKeys:
    """A hospital's private keys, one field per kind it holds."""

    x25519: X25519PrivateKey | None = None
    xwing: XWingPrivateKey | None = None


RecipientKeys = SealingKeys | X25519PublicKey | XWingPublicKey
"""What ``seal_case`` takes per recipient: its keys, or the one key it has."""

HospitalKey = OpeningKeys | X25519PrivateKey | XWingPrivateKey
"""What ``open_case`` takes: the hospital's keys, or the one key it has."""

DeviceKeyLookup = Callable[[str], Ed25519PublicKey | None]
"""``device_id -> public key`` (None when unknown or revoked)."""


@dataclass(frozen=True)
class OpenedCase:
    """What a recipient hospital gets out of an envelope."""

    case_id: str
    device_id: str
    created_at: int
    recipient_ids: tuple[str, ...]
    payload: bytes

    def bundle(self) -> dict[str, Any]:
        """The FHIR Bundle (JSON object)."""
        obj = json.loads(self.payload)
        if not isinstance(obj, dict):
            raise MalformedEnvelope("payload is not a JSON object")
        return obj


def _sealing_keys(keys: RecipientKeys) -> SealingKeys:
    if isinstance(keys, SealingKeys):
        return keys
    if isinstance(keys, XWingPublicKey):
        return SealingKeys(xwing=keys)
    if isinstance(keys, X25519PublicKey):
        return SealingKeys(x25519=keys)
    raise WrongKeyKind(type(keys).__name__)


def envelope_version_for(recipients: Mapping[str, RecipientKeys]) -> int:
    """2 when every recipient has an X-Wing key, else 1 (the device's rule)."""
    keys = [_sealing_keys(k) for k in recipients.values()]
    return V2 if keys and all(k.xwing is not None for k in keys) else V1


def _recipient_key(keys: RecipientKeys, version: int) -> X25519PublicKey | MLKEM768X25519PublicKey:
    """The ``cryptography`` public key of the version's kind; ``WrongKeyKind`` if none."""
    k = _sealing_keys(keys)
    if version == V2:
        if k.xwing is None:
            raise WrongKeyKind("a recipient has no X-Wing key")
        return k.xwing.hpke_key
    if k.x25519 is None:
        raise WrongKeyKind("a recipient has no X25519 key")
    return k.x25519


def seal_case(
    payload: bytes,
    *,
    case_id: str,
    device_id: str,
    device_key: Ed25519PrivateKey,
    recipients: Mapping[str, RecipientKeys],
    created_at: int | None = None,
    version: int | None = None,
) -> bytes:
    """Seal ``payload`` once for every recipient; return the envelope bytes.

    ``version`` None follows ``envelope_version_for``; a given version needs a key of
    its kind for every recipient (``WrongKeyKind``).
    """
    version = envelope_version_for(recipients) if version is None else version
    suite = _SUITES.get(version)
    if suite is None:
        raise UnsupportedVersion(f"version {version}")
    publics = {rid: _recipient_key(keys, version) for rid, keys in recipients.items()}
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_LEN)
    wrapped = [
        RecipientKey(
            rid,
            suite.encrypt(
                content_key, pub, info=hpke_info(case_id, device_id, rid, version=version)
            ),
        )
        for rid, pub in publics.items()
    ]
    header = encode_header(
        case_id=case_id,
        device_id=device_id,
        created_at=int(time.time()) if created_at is None else created_at,
        nonce=nonce,
        recipients=wrapped,
        version=version,
    )
    ciphertext = AESGCM(content_key).encrypt(nonce, payload, aad_for(header, version=version))
    return assemble(header, ciphertext, device_key, version=version)


def seal_json(obj: Mapping[str, Any], **kwargs: Any) -> bytes:
    """``seal_case`` for a JSON object (the FHIR Bundle)."""
    payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return seal_case(payload, **kwargs)


def open_case(
    data: bytes | SealedCase,
    *,
    hospital_id: str,
    hospital_key: HospitalKey,
    device_key_for: DeviceKeyLookup,
    expected_case_id: str | None = None,
) -> OpenedCase:
    """Check and open an envelope at ``hospital_id``.

    Order: parse, device known, signature, recipient, key of the version's kind,
    HPKE unwrap, payload. Raises an ``EnvelopeError`` subclass; never returns
    unauthenticated bytes.
    """
    sealed = data if isinstance(data, SealedCase) else SealedCase.from_bytes(data)
    if expected_case_id is not None and sealed.case_id != expected_case_id:
        raise MalformedEnvelope("case id does not match the delivery")
    public = device_key_for(sealed.device_id)
    if public is None:
        raise UnknownDevice()
    sealed.verify_signature(public)
    wrapped = sealed.wrapped_key_for(hospital_id)
    if wrapped is None:
        raise NotARecipient()
    private = _opening_key(hospital_key, sealed.version)
    info = hpke_info(sealed.case_id, sealed.device_id, hospital_id, version=sealed.version)
    try:
        content_key = _SUITES[sealed.version].decrypt(wrapped, private, info=info)
        payload = AESGCM(content_key).decrypt(sealed.nonce, sealed.payload, sealed.aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed() from exc
    return OpenedCase(
        case_id=sealed.case_id,
        device_id=sealed.device_id,
        created_at=sealed.created_at,
        recipient_ids=sealed.recipient_ids,
        payload=payload,
    )


def _opening_key(key: HospitalKey, version: int) -> X25519PrivateKey | MLKEM768X25519PrivateKey:
    """The ``cryptography`` private key of the version's kind; ``WrongKeyKind`` if none."""
    if isinstance(key, X25519PrivateKey):
        key = OpeningKeys(x25519=key)
    elif isinstance(key, XWingPrivateKey):
        key = OpeningKeys(xwing=key)
    elif not isinstance(key, OpeningKeys):
        raise WrongKeyKind(type(key).__name__)
    if version == V2:
        if key.xwing is None:
            raise WrongKeyKind("this hospital holds no X-Wing key")
        return key.xwing.hpke_key
    if key.x25519 is None:
        raise WrongKeyKind("this hospital holds no X25519 key")
    return key.x25519
