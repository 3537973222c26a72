"""The public keys callers register: checked when stored, parsed once when used."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub_server.core.errors import InvalidInput
from sync.signing import b64d, public_key_from_b64
from sync.xwing import XWingPublicKey

__all__ = [
    "check_hpke_key",
    "check_signing_key",
    "check_xwing_key",
    "key_kinds",
    "signing_key",
]

_KEYS: dict[str, Ed25519PublicKey] = {}  # parsed public keys by their text (immutable)
_KEYS_LIMIT = 100_000


def check_signing_key(text: str) -> str:
    """``text`` if it is an Ed25519 public key (32 raw bytes, base64url); else 422."""
    try:
        public_key_from_b64(text)
    except ValueError:
        raise InvalidInput(
            "bad_public_key", "public key must be 32 raw Ed25519 bytes, base64url"
        ) from None
    return text


def check_hpke_key(text: str) -> str:
    """``text`` if it is an X25519 public key (32 raw bytes, base64url); else 422."""
    try:
        if len(b64d(text)) != 32:
            raise ValueError
    except ValueError:
        raise InvalidInput(
            "bad_hpke_key", "hpke_public_key must be 32 raw X25519 bytes, base64url"
        ) from None
    return text


def check_xwing_key(text: str | None) -> str | None:
    """``text`` if it is an X-Wing public key (1,216 bytes, base64url: an ML-KEM-768
    encapsulation key that passes its checks and an X25519 key); None stays None; else 422."""
    if text is None:
        return None
    try:
        XWingPublicKey.from_bytes(b64d(text))
    except ValueError:
        raise InvalidInput(
            "bad_xwing_key",
            "xwing_public_key must be a 1,216-byte X-Wing (MLKEM768-X25519) key, base64url",
            "ハイブリッド鍵（X-Wing）の形式が不正です。",
        ) from None
    return text


def key_kinds(xwing_public_key: str | None) -> list[str]:
    """The key kinds a hospital published: always X25519, X-Wing once it has one."""
    return ["x25519", "xwing"] if xwing_public_key else ["x25519"]


def signing_key(text: str) -> Ed25519PublicKey:
    """The parsed key of a stored (already checked) text, parsed once per process."""
    key = _KEYS.get(text)
    if key is None:
        key = public_key_from_b64(text)
        if len(_KEYS) > _KEYS_LIMIT:
            _KEYS.clear()
        _KEYS[text] = key
    return key
