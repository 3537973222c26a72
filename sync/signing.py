"""Signed requests: how devices, hospitals and operators prove their key on every call.

No bearer secrets: each request carries an Ed25519 signature over its method,
path, time, a one-time nonce and the SHA-256 of its body (see docs/interfaces.md)::

    X-Kyukyu-Key-Id:    device:<id> | hospital:<id> | operator:<id>
    X-Kyukyu-Timestamp: <unix seconds>
    X-Kyukyu-Nonce:     <random, base64url>
    X-Kyukyu-Signature: base64url(Ed25519(sign_input))

The server checks the skew and that the nonce was not seen before (replay).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.signed import b64d, b64e

__all__ = [
    "HEADER_KEY_ID",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_SKEW_SECONDS",
    "SignatureError",
    "SignedHeaders",
    "b64d",
    "b64e",
    "check_request",
    "public_key_from_b64",
    "public_key_to_b64",
    "sign_input",
    "sign_request",
]

HEADER_KEY_ID = "X-Kyukyu-Key-Id"
HEADER_TIMESTAMP = "X-Kyukyu-Timestamp"
HEADER_NONCE = "X-Kyukyu-Nonce"
HEADER_SIGNATURE = "X-Kyukyu-Signature"
MAX_SKEW_SECONDS = 300


class SignatureError(Exception):
    """A request signature is missing, malformed, stale or wrong."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def public_key_to_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64e(raw)


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    raw = b64d(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_input(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes that are signed."""
    digest = hashlib.sha256(body).hexdigest()
    return f"kyukyu-v1\n{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode()


@dataclass(frozen=True)
class SignedHeaders:
    key_id: str
    timestamp: str
    nonce: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            HEADER_KEY_ID: self.key_id,
            HEADER_TIMESTAMP: self.timestamp,
            HEADER_NONCE: self.nonce,
            HEADER_SIGNATURE: self.signature,
        }


def sign_request(
    key: Ed25519PrivateKey,
    key_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    now: float | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request. ``path`` includes the query string."""
    ts = str(int(time.time() if now is None else now))
    nonce = b64e(secrets.token_bytes(16))
    sig = key.sign(sign_input(method, path, ts, nonce, body))
    return SignedHeaders(key_id, ts, nonce, b64e(sig)).as_dict()


def check_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    public_key_for: object,
    *,
    now: float | None = None,
    max_skew: int = MAX_SKEW_SECONDS,
) -> SignedHeaders:
    """Check a signed request's headers; return them (the caller records the nonce).

    ``public_key_for`` is a callable ``key_id -> Ed25519PublicKey | None``.
    Raises ``SignatureError`` (codes: missing, malformed, stale, unknown_key, bad_signature).
    Replay detection (the nonce) is the caller's: it owns the nonce store.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        got = SignedHeaders(
            lower[HEADER_KEY_ID.lower()],
            lower[HEADER_TIMESTAMP.lower()],
            lower[HEADER_NONCE.lower()],
            lower[HEADER_SIGNATURE.lower()],
        )
    except KeyError as exc:
        raise SignatureError("missing", f"missing header {exc.args[0]}") from None
    if not (got.timestamp.isascii() and got.timestamp.isdigit()) or len(got.timestamp) > 12:
        raise SignatureError("malformed", "bad timestamp")
    if not 16 <= len(got.nonce) <= 64:
        raise SignatureError("malformed", "bad nonce length")
    current = time.time() if now is None else now
    if abs(current - int(got.timestamp)) > max_skew:
        raise SignatureError("stale", "request timestamp outside the allowed window")
    if not callable(public_key_for):
        raise TypeError("public_key_for must be callable")
    key = public_key_for(got.key_id)
    if key is None:
        raise SignatureError("unknown_key", "unknown or revoked key")
    try:
        sig = b64d(got.signature)
        key.verify(sig, sign_input(method, path, got.timestamp, got.nonce, body))
    except (ValueError, InvalidSignature):
        raise SignatureError("bad_signature", "signature does not verify") from None
    return got
