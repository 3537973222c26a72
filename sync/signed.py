"""Hub-signed documents: one format for the platform, the device and the hospital.

A signed document is a JSON object with three members (see docs/envelope.md)::

    {"<field>": <body object>, "key_id": "hub:<16 hex>", "signature": "<base64url>"}

``signature`` is Ed25519 by the hub key over the RFC 8785 (JSON Canonicalization
Scheme) bytes of ``<body object>``; ``<field>`` names the document kind
(``directory``, ``snapshot``, ``device``). RFC 8785 is done by the ``rfc8785``
package, so any language with a JCS library and Ed25519 can check the signature.

This module is also the project's one base64 decoder (``b64d``) and encoder (``b64e``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync._errors import BadHubSignature

__all__ = [
    "BadHubSignature",
    "b64d",
    "b64e",
    "canonical_json",
    "sign_body",
    "signed_document",
    "verify_document",
]

_WHITESPACE = re.compile(r"[ \t\r\n]+")
_ALPHABET = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON (UTF-8). ``ValueError`` for what JSON cannot hold exactly
    (NaN, infinities, integers beyond ±2**53-1, non-string keys)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not canonicalisable: {exc}") from None


def b64e(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5): how every key and signature is written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode base64: standard or URL-safe alphabet, padded or not, ASCII whitespace ignored.

    Raises ``ValueError`` on anything else (other characters, a bad length, bad padding).
    """
    if not isinstance(text, str):
        raise ValueError("base64 must be text")
    if text.isascii():
        # What senders write (standard alphabet, padded, nothing else) in one C pass: a
        # sealed case's 5 KB envelope otherwise takes five passes. Whatever strict mode
        # accepts, the general path below reads as the same bytes.
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            pass
    return _b64d_general(text)


def _b64d_general(text: str) -> bytes:
    cleaned = _WHITESPACE.sub("", text)
    if not _ALPHABET.fullmatch(cleaned):
        raise ValueError("invalid base64")
    cleaned = cleaned.rstrip("=").replace("-", "+").replace("_", "/")
    if len(cleaned) % 4 == 1:
        raise ValueError("invalid base64 length")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def sign_body(key: Ed25519PrivateKey, body: Mapping[str, Any]) -> str:
    """The ``signature`` member: base64url Ed25519 over ``canonical_json(body)``."""
    return b64e(key.sign(canonical_json(dict(body))))


def signed_document(
    field: str, body: Mapping[str, Any], key: Ed25519PrivateKey, key_id: str
) -> dict[str, Any]:
    """``{field: body, "key_id": key_id, "signature": ...}``."""
    return {field: dict(body), "key_id": key_id, "signature": sign_body(key, body)}


def verify_document(
    document: Mapping[str, Any], field: str, key: Ed25519PublicKey
) -> dict[str, Any]:
    """Check a signed document against the pinned hub key; return its body.

    Raises:
        BadHubSignature: the document is not a signed ``field`` document, or the
            signature does not verify over the RFC 8785 bytes of the body.
    """
    body = document.get(field) if isinstance(document, Mapping) else None
    sig = document.get("signature") if isinstance(document, Mapping) else None
    if not isinstance(body, dict) or not isinstance(sig, str):
        raise BadHubSignature(f"no signed {field!r} document")
    try:
        key.verify(b64d(sig), canonical_json(body))
    except (ValueError, InvalidSignature):
        raise BadHubSignature(f"the {field!r} signature does not verify") from None
    return body
