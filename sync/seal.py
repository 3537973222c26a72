"""Seal a case for its recipient hospitals, and open it at one of them.

Sealing: a fresh 32-byte content key encrypts the FHIR JSON with AES-256-GCM;
HPKE base mode (RFC 9180; DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM)
wraps that key for each hospital's X25519 public key with case, device and
hospital bound in ``info``; the device signs the whole envelope with Ed25519.
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
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from sync._errors import (
    DecryptionFailed,
    MalformedEnvelope,
    NotARecipient,
    UnknownDevice,
)
from sync.envelope import (
    NONCE_LEN,
    RecipientKey,
    SealedCase,
    aad_for,
    assemble,
    encode_header,
    hpke_info,
)

__all__ = ["DeviceKeyLookup", "OpenedCase", "open_case", "seal_case", "seal_json"]

_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)

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


def seal_case(
    payload: bytes,
    *,
    case_id: str,
    device_id: str,
    device_key: Ed25519PrivateKey,
    recipients: Mapping[str, X25519PublicKey],
    created_at: int | None = None,
) -> bytes:
    """Seal ``payload`` once for every recipient; return the v1 envelope bytes."""
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_LEN)
    wrapped = [
        RecipientKey(rid, _SUITE.encrypt(content_key, pub, info=hpke_info(case_id, device_id, rid)))
        for rid, pub in recipients.items()
    ]
    header = encode_header(
        case_id=case_id,
        device_id=device_id,
        created_at=int(time.time()) if created_at is None else created_at,
        nonce=nonce,
        recipients=wrapped,
    )
    ciphertext = AESGCM(content_key).encrypt(nonce, payload, aad_for(header))
    return assemble(header, ciphertext, device_key)


def seal_json(obj: Mapping[str, Any], **kwargs: Any) -> bytes:
    """``seal_case`` for a JSON object (the FHIR Bundle)."""
    payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return seal_case(payload, **kwargs)


def open_case(
    data: bytes | SealedCase,
    *,
    hospital_id: str,
    hospital_key: X25519PrivateKey,
    device_key_for: DeviceKeyLookup,
    expected_case_id: str | None = None,
) -> OpenedCase:
    """Check and open an envelope at ``hospital_id``.

    Order: parse, device known, signature, recipient, HPKE unwrap, payload.
    Raises an ``EnvelopeError`` subclass; never returns unauthenticated bytes.
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
    try:
        content_key = _SUITE.decrypt(
            wrapped, hospital_key, info=hpke_info(sealed.case_id, sealed.device_id, hospital_id)
        )
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
