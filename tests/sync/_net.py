"""Loopback helpers: an ASGI app under uvicorn in a thread, key material for a test world."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it each answer waits ~40 ms (Nagle vs delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a loopback port in a thread; yield its base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    cfg = uvicorn.Config(app, log_level="warning", lifespan="auto", **config)
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    scheme = "https" if config.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


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
