"""応需状況 push: one region of --hospitals hospitals and --streams device streams on
PostgreSQL (a real ``kyukyu hub serve`` with --pg-workers workers); --changes hospitals each
post one change (``POST /v1/hospitals/me/availability``, one after the other once the
previous change reached every stream, or after --timeout); each change must reach every
device stream (``event: availability`` with its version).

Reported: streams held, deliveries / (changes x streams), and the latency from the POST
being sent to the event read on each stream (p50, p99, max over every change and stream).
The load generator (raw asyncio sockets), the hub and PostgreSQL share this machine.
Devices and hospitals are inserted straight into the database (one key each for all:
the ids differ, so every stream is its own identity). Prints one JSON line.

    .venv/bin/python benchmarks/availability_push.py [--hospitals 4000] [--streams 5000]
        [--changes 20] [--pg-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from hub_load import Signer, _pct, _raise_nofile, hub_process  # noqa: E402

from sync.signing import public_key_to_b64, sign_request  # noqa: E402

VERSION = re.compile(rb'"version":(\d+)')
REGION = "JP-34"


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


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[int, list[float]] = {}
        self.events: dict[int, asyncio.Event] = {}
        self.expected = 0

    def record(self, version: int) -> None:
        got = self.at.setdefault(version, [])
        got.append(time.perf_counter())
        if len(got) >= self.expected and version in self.events:
            self.events[version].set()


async def stream(
    host: str,
    port: int,
    signer: Signer,
    arrivals: Arrivals,
    ready: list[int],
    failures: dict[str, int],
) -> None:
    path = "/v1/devices/me/events"
    for attempt in range(4):
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
            head = "".join(f"{k}: {v}\r\n" for k, v in signer.headers("GET", path).items())
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            writer.write(f"{request}{head}\r\n".encode())
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise ConnectionError(status.decode(errors="replace").strip() or "closed")
            break
        except (ConnectionError, OSError) as exc:
            if attempt == 3:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                return
            await asyncio.sleep(1 + attempt + secrets.randbelow(1000) / 1000)
    counted = False
    kind = b""
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event:"):
                kind = line[6:].strip()
            elif line.startswith(b"data:"):
                if kind == b"ping" and not counted:
                    counted = True
                    ready[0] += 1
                elif kind == b"availability":
                    m = VERSION.search(line)
                    if m:
                        arrivals.record(int(m.group(1)))
    finally:
        writer.close()


async def run(
    url: str, hids: list[str], dids: list[str], key: Ed25519PrivateKey, changes: int, timeout: float
) -> dict[str, Any]:
    import httpx

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    arrivals = Arrivals()
    arrivals.expected = len(dids)
    ready = [0]
    failures: dict[str, int] = {}
    tasks = []
    t_open = time.perf_counter()
    for i, d in enumerate(dids):
        tasks.append(
            asyncio.create_task(
                stream(host, port, Signer(f"device:{d}", key), arrivals, ready, failures)
            )
        )
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # a ramp, not a storm
    deadline = time.monotonic() + 300
    while ready[0] + sum(failures.values()) < len(dids) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    open_s = time.perf_counter() - t_open
    latencies: list[float] = []
    reached = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for n in range(changes):
            hid = hids[(n * 997) % len(hids)]
            later = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
            body = json.dumps(
                {
                    "items": [
                        {
                            "code": "neurosurgery",
                            "status": ("unavailable", "available")[n % 2],
                            "expires_at": later,
                        }
                    ]
                }
            ).encode()
            path = "/v1/hospitals/me/availability"
            headers = {
                "content-type": "application/json",
                **sign_request(key, f"hospital:{hid}", "POST", path, body),
            }
            sent = time.perf_counter()
            r = await client.post(path, content=body, headers=headers)
            r.raise_for_status()
            version = int(r.json()["version"])
            done = arrivals.events.setdefault(version, asyncio.Event())
            if len(arrivals.at.get(version, [])) >= arrivals.expected:
                done.set()
            with contextlib.suppress(TimeoutError):  # counted as not reached
                await asyncio.wait_for(done.wait(), timeout)
            got = arrivals.at.get(version, [])
            reached += len(got)
            latencies.extend(t - sent for t in got)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = changes * len(dids)
    return {
        "streams_held": ready[0],
        "stream_failures": failures,
        "streams_open_s": round(open_s, 1),
        "changes": changes,
        "deliveries": reached,
        "deliveries_expected": expected,
        "reached_all": reached == expected,
        "p50_ms": _pct(latencies, 0.5),  # hub_load's: milliseconds
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": _ms(max(latencies) if latencies else None),
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hospitals", type=int, default=4000)
    p.add_argument("--streams", type=int, default=5000)
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--pg-workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per change")
    args = p.parse_args()
    _raise_nofile()
    from edge.card_sim import KeyPool, TestCA
    from tests.components import fresh_postgres_database

    key = Ed25519PrivateKey.generate()
    result: dict[str, Any] = {
        "benchmark": "availability_push",
        "database": "postgresql",
        "hospitals": args.hospitals,
        "streams_requested": args.streams,
        "hub_workers": args.pg_workers,
        "target_p99_ms": 1000,
        "note": "load generator, hub and PostgreSQL share this 2-core machine",
    }
    with tempfile.TemporaryDirectory() as d, fresh_postgres_database() as db_url:
        tmp = Path(d)
        ca = TestCA.create(tmp / "ca", key_factory=KeyPool(1))
        roots = tmp / "roots"
        roots.mkdir()
        (roots / "auth.pem").write_bytes(ca.auth_root.public_bytes(serialization.Encoding.PEM))
        hids, dids = populate(db_url, args.hospitals, args.streams, key)
        with hub_process(db_url, tmp, roots, args.pg_workers, 8) as (url, _proc):
            result.update(asyncio.run(run(url, hids, dids, key, args.changes, args.timeout)))
    result["p99_within_target"] = result.get("p99_ms") is not None and result["p99_ms"] <= 1000
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
