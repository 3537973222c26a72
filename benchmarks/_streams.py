"""Event streams held by a benchmark's load generator: many sockets read by protocol
callbacks in one event loop (no task per stream), each event's match recorded with the
monotonic clock at the moment its bytes were read. Used by ``availability_push`` (device
streams, ``event: availability``) and ``incident_alert`` (hospital streams,
``event: incident``)."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from typing import Protocol


class _Signer(Protocol):
    def headers(self, method: str, path: str) -> dict[str, str]: ...


class EventReader(asyncio.Protocol):
    """One stream: the status line, then whole events (split at the blank line); for an
    event named ``event`` whose text matches ``pattern``, ``on_match(group 1, now)``;
    ``held`` is set by the first ``ping`` (the stream is open), or fails with the
    status line or the connection's end."""

    def __init__(
        self,
        event: bytes,
        pattern: re.Pattern[bytes],
        on_match: Callable[[bytes, float], None],
        held: asyncio.Future[bool],
    ) -> None:
        self.event = b"event: " + event
        self.pattern = pattern
        self.on_match = on_match
        self.held = held
        self.buf = b""
        self.status_seen = False

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        if not self.status_seen:
            if b"\r\n" not in self.buf:
                return
            status, _, self.buf = self.buf.partition(b"\r\n")
            self.status_seen = True
            if b" 200 " not in status:
                if not self.held.done():
                    self.held.set_exception(ConnectionError(status.decode(errors="replace")))
                return
        *events, self.buf = self.buf.split(b"\n\n")
        for ev in events:
            if self.event in ev:
                m = self.pattern.search(ev)
                if m:
                    self.on_match(m.group(1), now)
            elif b"event: ping" in ev and not self.held.done():
                self.held.set_result(True)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.held.done():
            self.held.set_exception(exc or ConnectionResetError("closed"))


async def open_event_stream(
    host: str,
    port: int,
    path: str,
    signer: _Signer,
    reader: Callable[[asyncio.Future[bool]], EventReader],
    *,
    attempts: int = 1,
    wait_s: float = 60,
) -> asyncio.Transport:
    """Open ``path`` as ``signer`` and wait for its first ping; up to ``attempts`` tries
    (1 s, 2 s, ... apart, with jitter); the last failure is raised."""
    loop = asyncio.get_running_loop()
    for attempt in range(attempts):
        held: asyncio.Future[bool] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(lambda held=held: reader(held), host, port)
            head = "".join(f"{k}: {v}\r\n" for k, v in signer.headers("GET", path).items())
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            transport.write(f"{request}{head}\r\n".encode())
            await asyncio.wait_for(held, wait_s)
            return transport
        except (ConnectionError, OSError, TimeoutError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1 + attempt + secrets.randbelow(1000) / 1000)
    raise AssertionError("unreachable")
