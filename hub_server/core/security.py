"""Small security helpers: the hub's signing key, token hashing.

Canonical JSON, document signatures and base64 are ``sync.signed`` (one module for
the platform, the device and the hospital).
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.signed import b64e, signed_document

__all__ = [
    "HubKey",
    "new_id",
    "new_token",
    "sha256_hex",
]


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def new_id() -> str:
    """A random 16-hex-digit identifier (devices, hospitals, operators, challenges)."""
    return secrets.token_hex(8)


def new_token() -> str:
    """A one-time enrollment token (only its SHA-256 is stored).

    Hex, so that it never starts with "-": a technician pastes it after ``--token``
    and a command line would read a leading dash as an option.
    """
    return secrets.token_hex(32)


class HubKey:
    """The hub's Ed25519 key: signs the hospital directory and revocation snapshots."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_b64 = b64e(raw)
        self.key_id = "hub:" + sha256_hex(raw)[:16]

    @classmethod
    def generate(cls) -> HubKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> HubKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> HubKey:
        if path.exists():
            return cls.load(path)
        hub = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            hub._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return hub

    def sign(self, data: bytes) -> str:
        """base64url Ed25519 signature of ``data``."""
        return b64e(self._key.sign(data))

    def sign_document(self, field: str, body: dict[str, Any]) -> dict[str, Any]:
        """``{field: body, key_id, signature}`` (``sync.signed``; docs/envelope.md)."""
        return signed_document(field, body, self._key, self.key_id)
