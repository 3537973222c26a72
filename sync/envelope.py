"""The sealed case envelope, formats v1 and v2 (see docs/envelope.md).

Layout (all integers big-endian; the same for both versions)::

    offset   size  field
    0        4     magic  b"KKSC"
    4        1     version: 1 (X25519 HPKE) or 2 (MLKEM768-X25519 hybrid HPKE)
    5        4     H = header length
    9        H     header: canonical UTF-8 JSON (sorted keys, no spaces)
    9+H      4     P = payload length
    13+H     P     payload: AES-256-GCM(content key, nonce, FHIR JSON, aad = bytes[0, 9+H))
    13+H+P   64    Ed25519 signature of the device over bytes[0, 13+H+P)

The header carries the routing metadata (case id, device id, recipients) in the
clear so the platform can route without decrypting; everything in it is bound
by the payload's AAD, each recipient's HPKE info and the device signature.
The version byte decides the header's ``v``, HPKE suite name, wrapped key length
and info label (``FORMATS``); one parser reads both, never guessing.

In JSON (the device's post, the hub's case event) a sealed case travels as standard
base64 text, padded (one field, one alphabet): ``envelope_to_text`` writes it,
``envelope_from_text`` and ``SealedCase.from_text`` read it (``sync.signed.b64d_std``).

This module only parses and checks the signature; ``sync.seal`` does the crypto.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync._errors import BadSignature, MalformedEnvelope, UnsupportedVersion
from sync.signed import b64d, b64d_std, b64e, b64e_std

__all__ = [
    "CONTENT_AEAD",
    "CONTENT_TYPE",
    "FORMATS",
    "MAGIC",
    "MAX_PAYLOAD",
    "MAX_RECIPIENTS",
    "V1",
    "V2",
    "EnvelopeFormat",
    "RecipientKey",
    "SealedCase",
    "assemble",
    "encode_header",
    "envelope_from_text",
    "envelope_to_text",
    "hpke_info",
]

MAGIC = b"KKSC"
CONTENT_AEAD = "AES-256-GCM"
CONTENT_TYPE = "application/fhir+json"
MAX_PAYLOAD = 16 * 1024 * 1024
MAX_RECIPIENTS = 64
SIGNATURE_LEN = 64
NONCE_LEN = 12
V1 = 1
V2 = 2


@dataclass(frozen=True)
class EnvelopeFormat:
    """What the version byte decides."""

    version: int
    hpke: str  # the header's ``hpke`` name of the suite that wraps the content key
    wrapped_key_len: int  # HPKE enc || wrapped 32-byte content key || AEAD tag
    info_label: bytes  # first part of each recipient's HPKE ``info``
    max_header: int  # 64 recipients fit with room to spare


FORMATS: dict[int, EnvelopeFormat] = {
    V1: EnvelopeFormat(
        version=V1,
        hpke="DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/AES-128-GCM",
        wrapped_key_len=32 + 32 + 16,  # X25519 enc, key, GCM tag
        info_label=b"kyukyu-case-v1",
        max_header=64 * 1024,
    ),
    V2: EnvelopeFormat(
        version=V2,
        hpke="MLKEM768-X25519/HKDF-SHA256/AES-256-GCM",
        wrapped_key_len=1120 + 32 + 16,  # X-Wing enc (ML-KEM ct || X25519), key, GCM tag
        info_label=b"kyukyu-case-v2",
        max_header=128 * 1024,
    ),
}

_PREFIX = struct.Struct(">4sBI")
_LEN = struct.Struct(">I")
# Ids travel in headers, URLs and HPKE info: a tight alphabet keeps them unambiguous.
_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _format(version: int) -> EnvelopeFormat:
    fmt = FORMATS.get(version)
    if fmt is None:
        raise UnsupportedVersion(f"version {version}")
    return fmt


def hpke_info(case_id: str, device_id: str, recipient_id: str, *, version: int = V1) -> bytes:
    """HPKE ``info`` for one recipient: binds the wrapped key to version, case, device
    and hospital."""
    return b"\x00".join(
        [_format(version).info_label, case_id.encode(), device_id.encode(), recipient_id.encode()]
    )


@dataclass(frozen=True)
class RecipientKey:
    """One recipient hospital and the content key wrapped for it (HPKE enc || ct)."""

    id: str
    wrapped_key: bytes


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise MalformedEnvelope(f"bad {what}")
    return value


def encode_header(
    *,
    case_id: str,
    device_id: str,
    created_at: int,
    nonce: bytes,
    recipients: Sequence[RecipientKey],
    version: int = V1,
) -> bytes:
    """The canonical header bytes (sorted keys, no whitespace)."""
    fmt = _format(version)
    _check_id(case_id, "case_id")
    _check_id(device_id, "device_id")
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise MalformedEnvelope("recipient count out of range")
    ids = [_check_id(r.id, "recipient id") for r in recipients]
    if len(set(ids)) != len(ids):
        raise MalformedEnvelope("duplicate recipient")
    if any(len(r.wrapped_key) != fmt.wrapped_key_len for r in recipients):
        raise MalformedEnvelope("bad wrapped key")
    header: dict[str, Any] = {
        "v": fmt.version,
        "case_id": case_id,
        "device_id": device_id,
        "created_at": int(created_at),
        "hpke": fmt.hpke,
        "aead": CONTENT_AEAD,
        "content_type": CONTENT_TYPE,
        "nonce": b64e(nonce),
        "recipients": [{"id": r.id, "key": b64e(r.wrapped_key)} for r in recipients],
    }
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def assemble(
    header: bytes, payload: bytes, device_key: Ed25519PrivateKey, *, version: int = V1
) -> bytes:
    """Frame header and encrypted payload and sign the whole with the device key."""
    if len(header) > _format(version).max_header or len(payload) > MAX_PAYLOAD:
        raise MalformedEnvelope("header or payload too large")
    body = aad_for(header, version=version) + _LEN.pack(len(payload)) + payload
    return body + device_key.sign(body)


def aad_for(header: bytes, *, version: int = V1) -> bytes:
    """The payload AAD: magic, version, header length and header."""
    return _PREFIX.pack(MAGIC, _format(version).version, len(header)) + header


@dataclass(frozen=True)
class SealedCase:
    """A parsed envelope (v1 or v2); readable metadata, opaque payload.

    ``SealedCase.from_bytes(b)`` checks the framing and header only; the platform
    uses it for routing, ``verify_signature`` with the device's public key to
    check who sealed it. Opening is ``sync.seal.open_case``.
    """

    version: int
    case_id: str
    device_id: str
    created_at: int
    nonce: bytes
    recipients: tuple[RecipientKey, ...]
    header: bytes
    payload: bytes
    signature: bytes
    raw: bytes

    @property
    def recipient_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.recipients)

    @property
    def signed_bytes(self) -> bytes:
        return self.raw[:-SIGNATURE_LEN]

    @property
    def aad(self) -> bytes:
        return aad_for(self.header, version=self.version)

    def wrapped_key_for(self, recipient_id: str) -> bytes | None:
        for r in self.recipients:
            if r.id == recipient_id:
                return r.wrapped_key
        return None

    def to_bytes(self) -> bytes:
        return self.raw

    def to_text(self) -> str:
        """The envelope as it travels in JSON (``envelope_to_text``)."""
        return envelope_to_text(self.raw)

    @classmethod
    def from_text(cls, text: object) -> SealedCase:
        """Decode and parse an envelope from JSON text; ``MalformedEnvelope`` /
        ``UnsupportedVersion`` when it is not one."""
        return cls.from_bytes(envelope_from_text(text))

    def verify_signature(self, public_key: Ed25519PublicKey) -> None:
        """Raise ``BadSignature`` unless the device key signed exactly these bytes."""
        try:
            public_key.verify(self.signature, self.signed_bytes)
        except InvalidSignature:
            raise BadSignature() from None

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedCase:
        """Parse an envelope; raise ``MalformedEnvelope`` / ``UnsupportedVersion``."""
        data = bytes(data)
        if len(data) < _PREFIX.size:
            raise MalformedEnvelope("truncated")
        magic, version, hlen = _PREFIX.unpack_from(data, 0)
        if magic != MAGIC:
            raise MalformedEnvelope("bad magic")
        fmt = _format(version)
        if hlen > fmt.max_header:
            raise MalformedEnvelope("header too large")
        pos = _PREFIX.size
        header = data[pos : pos + hlen]
        pos += hlen
        if len(header) != hlen or len(data) < pos + _LEN.size:
            raise MalformedEnvelope("truncated")
        (plen,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        if plen > MAX_PAYLOAD or len(data) != pos + plen + SIGNATURE_LEN:
            raise MalformedEnvelope("length mismatch")
        payload = data[pos : pos + plen]
        signature = data[pos + plen :]
        fields = _parse_header(header, fmt)
        return cls(raw=data, header=header, payload=payload, signature=signature, **fields)


def envelope_to_text(data: bytes | SealedCase) -> str:
    """Envelope bytes as JSON text: standard base64, padded."""
    raw = data.raw if isinstance(data, SealedCase) else data
    return b64e_std(raw)


def envelope_from_text(text: object) -> bytes:
    """The envelope bytes of its JSON text (standard base64, padded: ``b64d_std``);
    ``MalformedEnvelope`` when it is not that."""
    if not isinstance(text, str):
        raise MalformedEnvelope("envelope is not base64 text")
    try:
        return b64d_std(text)
    except ValueError:
        raise MalformedEnvelope("envelope is not base64") from None


def _parse_header(header: bytes, fmt: EnvelopeFormat) -> dict[str, Any]:
    try:
        obj = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedEnvelope("header is not JSON") from None
    if not isinstance(obj, Mapping):
        raise MalformedEnvelope("header is not an object")
    expected = {
        "v",
        "case_id",
        "device_id",
        "created_at",
        "hpke",
        "aead",
        "content_type",
        "nonce",
        "recipients",
    }
    if set(obj) != expected:
        raise MalformedEnvelope("unexpected header fields")
    if obj["v"] != fmt.version or isinstance(obj["v"], bool):
        raise UnsupportedVersion("header version")
    if obj["hpke"] != fmt.hpke or obj["aead"] != CONTENT_AEAD:
        raise UnsupportedVersion("algorithm")
    if obj["content_type"] != CONTENT_TYPE:
        raise UnsupportedVersion("content type")
    created = obj["created_at"]
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        raise MalformedEnvelope("bad created_at")
    nonce = _b64(obj["nonce"], NONCE_LEN, "nonce")
    raw_recipients = obj["recipients"]
    if not isinstance(raw_recipients, list) or not 1 <= len(raw_recipients) <= MAX_RECIPIENTS:
        raise MalformedEnvelope("bad recipients")
    recipients: list[RecipientKey] = []
    for entry in raw_recipients:
        if not isinstance(entry, Mapping) or set(entry) != {"id", "key"}:
            raise MalformedEnvelope("bad recipient entry")
        rid = _check_id(entry["id"], "recipient id")
        recipients.append(RecipientKey(rid, _b64(entry["key"], fmt.wrapped_key_len, "wrapped key")))
    if len({r.id for r in recipients}) != len(recipients):
        raise MalformedEnvelope("duplicate recipient")
    # Only the canonical encoding is accepted: one envelope, one byte string.
    canonical = encode_header(
        case_id=_check_id(obj["case_id"], "case_id"),
        device_id=_check_id(obj["device_id"], "device_id"),
        created_at=created,
        nonce=nonce,
        recipients=recipients,
        version=fmt.version,
    )
    if canonical != header:
        raise MalformedEnvelope("header is not canonical")
    return {
        "version": fmt.version,
        "case_id": obj["case_id"],
        "device_id": obj["device_id"],
        "created_at": created,
        "nonce": nonce,
        "recipients": tuple(recipients),
    }


def _b64(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEnvelope(f"bad {what}")
    try:
        raw = b64d(value)
    except ValueError:
        raise MalformedEnvelope(f"bad {what}") from None
    if len(raw) != length:  # b64d is strict: one text per byte string
        raise MalformedEnvelope(f"bad {what}")
    return raw
