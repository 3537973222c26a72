"""Loopback helpers: an ASGI app under uvicorn in a thread, key material for a test world."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kyukyu.testing import serve_in_thread


def serve(app: Any, **config: Any) -> AbstractContextManager[str]:
    """Run ``app`` under uvicorn on a loopback port in a thread; yield its base URL."""
    return serve_in_thread(app, **config)


@dataclass
class Hospital:
    id: str
    hpke: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    signing: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)


@dataclass
class World:
    """One device and some hospitals with their keys (ids filled in once registered)."""

    device_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    device_id: str = "dev-1"
    hospitals: list[Hospital] = field(default_factory=list)

    def device_lookup(self, device_id: str) -> Ed25519PublicKey | None:
        return self.device_key.public_key() if device_id == self.device_id else None

    def recipients(self, n: int | None = None) -> dict[str, Any]:
        chosen = self.hospitals if n is None else self.hospitals[:n]
        return {h.id: h.hpke.public_key() for h in chosen}
