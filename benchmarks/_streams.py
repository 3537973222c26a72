"""A region on PostgreSQL behind a real hub (``region_hub``), and event streams held by
a benchmark's load generator: many sockets read by protocol
callbacks in one event loop (no task per stream), each event's match recorded with the
monotonic clock at the moment its bytes were read. Used by ``availability_push`` (device
streams, ``event: availability``) and ``incident_alert`` (hospital streams,
``event: incident``)."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hub_load import hub_process

from sync.signing import public_key_to_b64

REGION = "JP-34"


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


def populate(
    db_url: str, hospitals: int, streams: int, key: Ed25519PrivateKey
) -> tuple[list[str], list[str]]:
    """The region, its hospitals and devices, straight into the database."""
    import sqlalchemy as sa

    from hub_server.core.db import make_engine, migrate, utcnow
    from hub_server.core.security import new_id
    from hub_server.models import Device, Hospital, Region

    migrate(db_url)
    pub = public_key_to_b64(key.public_key())
    hpke = public_key_to_b64(Ed25519PrivateKey.generate().public_key())  # any 32 bytes
    now = utcnow()
    engine = make_engine(db_url)
    hids = [new_id() for _ in range(hospitals)]
    dids = [new_id() for _ in range(streams)]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Region.__table__),
            [{"code": REGION, "name": "広島", "neighbours": "[]", "updated_at": now}],
        )  # type: ignore[attr-defined]
        conn.execute(
            sa.insert(Hospital.__table__),  # type: ignore[attr-defined]
            [
                {"id": h, "name": f"病院{i}", "lat": 34.3 + i * 1e-4, "lon": 132.4,
                 "hpke_public_key": hpke, "signing_public_key": pub, "revoked": False,
                 "created_at": now, "event_seq": 0, "region": REGION}
                for i, h in enumerate(hids)
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(Device.__table__),  # type: ignore[attr-defined]
            [
                {"id": d, "name": f"救急{i}", "fire_department": "広島市消防局",
                 "public_key": pub, "revoked": False, "created_at": now, "event_seq": 0,
                 "region": REGION}
                for i, d in enumerate(dids)
            ],
        )  # fmt: skip
    engine.dispose()
    return hids, dids


@contextmanager
def region_hub(
    hospitals: int, devices: int, key: Ed25519PrivateKey, workers: int
) -> Iterator[tuple[str, subprocess.Popen[bytes], list[str], list[str]]]:
    """A fresh PostgreSQL database holding one region of ``hospitals`` hospitals and
    ``devices`` devices (``key`` signs for all), behind ``kyukyu hub serve`` with
    ``workers`` workers: (its URL, its process, the hospital ids, the device ids)."""
    from edge.card_sim import KeyPool, TestCA
    from tests.components import fresh_postgres_database

    with tempfile.TemporaryDirectory() as d, fresh_postgres_database() as db_url:
        tmp = Path(d)
        ca = TestCA.create(tmp / "ca", key_factory=KeyPool(1))
        roots = tmp / "roots"
        roots.mkdir()
        (roots / "auth.pem").write_bytes(ca.auth_root.public_bytes(serialization.Encoding.PEM))
        hids, dids = populate(db_url, hospitals, devices, key)
        with hub_process(db_url, tmp, roots, workers, 8) as (url, proc):
            yield url, proc, hids, dids
