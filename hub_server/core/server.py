"""The hub's uvicorn options: the door's guarded protocol (``door.server``) and the
keep-alive, from the hub's settings."""

from __future__ import annotations

from typing import Any

from door.server import (
    GuardedHttpToolsProtocol,
    configure,
    connections_by_client,
    parse_proxy_header,
)
from hub_server.core.config import Settings

__all__ = [
    "GuardedHttpToolsProtocol",
    "configure",
    "connections_by_client",
    "parse_proxy_header",
    "uvicorn_options",
]

LISTEN_BACKLOG = 16384


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options of ``kyukyu hub serve``: this protocol and the keep-alive."""
    return {
        "http": GuardedHttpToolsProtocol,
        # The protocol takes the client from a trusted proxy itself (X-Forwarded-For, the
        # PROXY header), before the door: uvicorn's middleware would read it a second time
        # and, by default, believe any local process.
        "proxy_headers": False,
        "timeout_keep_alive": max(1, round(settings.keepalive_timeout_seconds)),
        # Thousands of hospitals and ambulances reconnect at once after a network or hub
        # restart: a deeper accept queue than uvicorn's 2048 (the kernel caps it at
        # net.core.somaxconn, 4096 by default).
        "backlog": LISTEN_BACKLOG,
    }
