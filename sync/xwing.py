"""X-Wing keys (MLKEM768-X25519, HPKE KEM 0x647A) as the envelope v2 uses them.

``cryptography``'s HPKE suite ``KEM.MLKEM768_X25519`` takes a key made of its two
parts (an ML-KEM-768 key and an X25519 key) and has no byte form for the pair. This
module gives the pair the forms of draft-connolly-cfrg-xwing-kem (the ones other
implementations, e.g. Node's ``@hpke/hybridkem-x-wing``, read and write):

- the private key is its 32-byte seed; ``SHAKE256(seed, 96)`` expands it into the
  ML-KEM-768 seed ``d || z`` (64 bytes, FIPS 203 key generation) and the X25519
  private key (32 bytes);
- the public key is the ML-KEM-768 encapsulation key (1,184 bytes) followed by the
  X25519 public key (32 bytes): 1,216 bytes.

The combiner is ``cryptography``'s (OpenSSL's); nothing here mixes secrets.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey, MLKEM768X25519PublicKey

__all__ = ["PUBLIC_KEY_LEN", "SEED_LEN", "XWingPrivateKey", "XWingPublicKey"]

SEED_LEN = 32
MLKEM_PUBLIC_LEN = 1184
X25519_LEN = 32
PUBLIC_KEY_LEN = MLKEM_PUBLIC_LEN + X25519_LEN  # 1,216


class XWingPublicKey:
    """A hospital's X-Wing public key: its 1,216 bytes and the ``cryptography`` key."""

    __slots__ = ("_hpke", "_raw")

    def __init__(self, raw: bytes) -> None:
        raw = bytes(raw)
        if len(raw) != PUBLIC_KEY_LEN:
            raise ValueError(f"an X-Wing public key is {PUBLIC_KEY_LEN} bytes")
        # Both constructors check their part (length; ML-KEM's modulus check).
        self._hpke = MLKEM768X25519PublicKey(
            MLKEM768PublicKey.from_public_bytes(raw[:MLKEM_PUBLIC_LEN]),
            X25519PublicKey.from_public_bytes(raw[MLKEM_PUBLIC_LEN:]),
        )
        self._raw = raw

    @classmethod
    def from_bytes(cls, raw: bytes) -> XWingPublicKey:
        """``ValueError`` unless ``raw`` is an X-Wing public key."""
        return cls(raw)

    def to_bytes(self) -> bytes:
        return self._raw

    @property
    def hpke_key(self) -> MLKEM768X25519PublicKey:
        """The key ``cryptography``'s ``Suite(KEM.MLKEM768_X25519, ...)`` encrypts to."""
        return self._hpke

    def __eq__(self, other: object) -> bool:
        return isinstance(other, XWingPublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return "XWingPublicKey(...)"


class XWingPrivateKey:
    """A hospital's X-Wing private key, kept as its 32-byte seed."""

    __slots__ = ("_hpke", "_public", "_seed")

    def __init__(self, seed: bytes) -> None:
        seed = bytes(seed)
        if len(seed) != SEED_LEN:
            raise ValueError(f"an X-Wing seed is {SEED_LEN} bytes")
        expanded = hashlib.shake_256(seed).digest(64 + X25519_LEN)
        mlkem = MLKEM768PrivateKey.from_seed_bytes(expanded[:64])  # d || z
        x25519 = X25519PrivateKey.from_private_bytes(expanded[64:])
        self._seed = seed
        self._hpke = MLKEM768X25519PrivateKey(mlkem, x25519)
        self._public = XWingPublicKey(
            mlkem.public_key().public_bytes_raw() + x25519.public_key().public_bytes_raw()
        )

    @classmethod
    def generate(cls) -> XWingPrivateKey:
        return cls(os.urandom(SEED_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> XWingPrivateKey:
        """``ValueError`` unless ``seed`` is 32 bytes."""
        return cls(seed)

    def seed_bytes(self) -> bytes:
        """The 32-byte seed: the whole private key (keep it like one)."""
        return self._seed

    def public_key(self) -> XWingPublicKey:
        return self._public

    @property
    def hpke_key(self) -> MLKEM768X25519PrivateKey:
        """The key ``cryptography``'s ``Suite(KEM.MLKEM768_X25519, ...)`` decrypts with."""
        return self._hpke

    def __repr__(self) -> str:  # never the seed
        return "XWingPrivateKey(...)"
