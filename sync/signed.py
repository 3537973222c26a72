"""Hub-signed documents: one format for the platform, the device and the hospital.

A signed document is a JSON object with three members (see docs/envelope.md)::

    {"<field>": <body object>, "key_id": "hub:<16 hex>", "signature": "<base64url>"}

``signature`` is Ed25519 by the hub key over the RFC 8785 (JSON Canonicalization
Scheme) bytes of ``<body object>``; ``<field>`` names the document kind
(``directory``, ``snapshot``, ``device``). RFC 8785 is done by the ``rfc8785``
package, so any language with a JCS library and Ed25519 can check the signature.

This module is also the project's one base64 codec, one alphabet per field (see
docs/envelope.md): ``b64e``/``b64d`` base64url without padding (keys, signatures, nonces),
``b64e_std``/``b64d_std`` standard base64 padded (envelopes, card certificates and
signatures, CRLs). Both decoders are strict.
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
    "InvalidBase64",
    "b64d",
    "b64d_std",
    "b64e",
    "b64e_std",
    "canonical_json",
    "sign_body",
    "signed_document",
    "verify_document",
]

#: The base64url alphabet (RFC 4648 §5) and its value of each character.
_URL_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_STD_VALUE = {c: i for i, c in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)}  # fmt: skip
_URL_VALUE = {**_STD_VALUE, "-": 62, "_": 63}
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")


class InvalidBase64(ValueError):
    """Text that is not the one spelling of bytes its field allows (a ``ValueError``:
    every caller that refused bad base64 before refuses this)."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON (UTF-8). ``ValueError`` for what JSON cannot hold exactly
    (NaN, infinities, integers beyond ±2**53-1, non-string keys)."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not canonicalisable: {exc}") from None


def b64e(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5): how every key, signature and nonce is
    written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64e_std(data: bytes) -> str:
    """Standard base64, padded (RFC 4648 §4): how envelopes and card data are written."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64d(text: str) -> bytes:
    """Decode base64url without padding, strictly: the inverse of ``b64e``.

    Only ``A-Z a-z 0-9 - _``; no ``=``, no whitespace, no character of the standard
    alphabet, no unused bits set in the last character (one text per byte string).
    Raises ``InvalidBase64`` (a ``ValueError``) on anything else.
    """
    if not isinstance(text, str):
        raise InvalidBase64("base64url must be text")
    if not _URL_ALPHABET.fullmatch(text):
        raise InvalidBase64("invalid base64url: a character outside A-Z a-z 0-9 - _")
    rest = len(text) % 4
    if rest == 1:
        raise InvalidBase64("invalid base64url length")
    if rest and _URL_VALUE[text[-1]] & (0x0F if rest == 2 else 0x03):
        raise InvalidBase64("invalid base64url: unused bits set")
    # The alphabet is checked: the text is ASCII, and bytes translate by table (C speed).
    return binascii.a2b_base64(text.encode("ascii").translate(_URL_TO_STD) + b"=" * (-rest % 4))


def b64d_std(text: str) -> bytes:
    """Decode standard base64 with its padding, strictly: the inverse of ``b64e_std``.

    Only ``A-Z a-z 0-9 + /`` then the padding the length needs; no whitespace, no
    character of the URL-safe alphabet, no unused bits set. One C pass (a sealed case's
    5 KB envelope). Raises ``InvalidBase64`` (a ``ValueError``) on anything else.
    """
    if not isinstance(text, str):
        raise InvalidBase64("base64 must be text")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII character
        raise InvalidBase64("invalid base64 (standard alphabet, padded)") from None
    if len(text) != (len(raw) + 2) // 3 * 4:
        raise InvalidBase64("invalid base64 padding")
    pad = len(text) - len(text.rstrip("=")) if text.endswith("=") else 0
    if pad and _STD_VALUE[text[-pad - 1]] & (0x0F if pad == 2 else 0x03):
        raise InvalidBase64("invalid base64: unused bits set")
    return raw


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
