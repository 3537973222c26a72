"""RSA-2048 keys for the test CA and the virtual cards.

Generating an RSA-2048 key costs 50-500 ms; suites pass a ``KeyPool`` (a few
keys handed out in turn) so hundreds of test cards cost nothing. Sharing keys
between test cards is harmless: this is test material only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["KeyFactory", "KeyPool", "key_from_pem", "key_to_pem", "new_rsa_key"]

KeyFactory = Callable[[], rsa.RSAPrivateKey]


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key with e = 65537 (what J-LIS issues)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class KeyPool:
    """Hands out ``size`` keys round-robin; generates each one on first use."""

    def __init__(self, size: int = 4) -> None:
        self._keys: list[rsa.RSAPrivateKey] = []
        self._size = max(1, size)
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if len(self._keys) < self._size:
                self._keys.append(new_rsa_key())
                return self._keys[-1]
            key = self._keys[self._next % self._size]
            self._next += 1
            return key


def key_to_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def key_from_pem(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    return key
