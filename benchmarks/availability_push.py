"""応需状況 push: one region of --hospitals hospitals and --streams device streams on
PostgreSQL (a real ``kyukyu hub serve`` with --pg-workers workers); --changes hospitals each
post one change (``POST /v1/hospitals/me/availability``, one after the other once the
previous change reached every stream, or after --timeout); each change must reach every
device stream (``event: availability`` with its version).

The streams are held by --clients load-generator processes, each with its own event loop
reading its sockets by protocol callbacks (no task per stream): one Python loop reading
5,000 sockets on the hub's two cores measured mostly itself. Times are taken on
``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every process of the machine): from
right before the POST is sent (parent) to the event's bytes being read (generator).
A warm-up change, not measured, first reaches every stream: a stream's first bytes go
out before it reads what it missed from the database, so "held" is not yet "caught up".

Reported: streams held, deliveries / (changes x streams), and the latency (p50, p99, max
over every change and stream). The load generator, the hub and PostgreSQL share this
machine. Devices and hospitals are inserted straight into the database (one key each for
all: the ids differ, so every stream is its own identity). Prints one JSON line.

    .venv/bin/python benchmarks/availability_push.py [--hospitals 4000] [--streams 5000]
        [--changes 20] [--pg-workers 2] [--clients 4] [--profile hub.speedscope.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _streams import EventReader, open_event_stream, region_hub  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from hub_load import Signer, _pct, _raise_nofile  # noqa: E402

from sync.signing import sign_request  # noqa: E402

VERSION = re.compile(rb'"version":(\d+)')


class Arrivals:
    """A generator process's arrival times (``time.monotonic()``) per change version."""

    def __init__(self) -> None:
        self.at: dict[int, list[float]] = {}
        self.held = 0
        self.reported: set[int] = set()
        self.out: Any = None  # the pipe to the parent

    def record(self, version: int, now: float) -> None:
        got = self.at.setdefault(version, [])
        got.append(now)
        if len(got) >= self.held and version not in self.reported:
            self.reported.add(version)
            self.out.send(("done", version, got))


async def open_stream(
    host: str, port: int, signer: Signer, arrivals: Arrivals, failures: dict[str, int]
) -> asyncio.Transport | None:
    """One device's stream (four tries); a stream that never opens is counted by error."""

    def reader(held: asyncio.Future[bool]) -> EventReader:
        return EventReader(
            b"availability", VERSION, lambda v, now: arrivals.record(int(v), now), held
        )

    try:
        return await open_event_stream(
            host, port, "/v1/devices/me/events", signer, reader, attempts=4, wait_s=120
        )
    except (ConnectionError, OSError, TimeoutError) as exc:
        failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
        return None


async def generator(
    host: str, port: int, dids: list[str], key: Ed25519PrivateKey, out: Any
) -> None:
    """One load-generator process: holds its streams, tells the parent how many, reports
    each version's arrival times once all its streams have it, and at "stop" the rest."""
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    arrivals.out = out
    failures: dict[str, int] = {}
    opening = []
    for i, d in enumerate(dids):
        opening.append(
            asyncio.ensure_future(
                open_stream(host, port, Signer(f"device:{d}", key), arrivals, failures)
            )
        )
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # a ramp, not a storm
    transports = [t for t in await asyncio.gather(*opening) if t is not None]
    arrivals.held = len(transports)
    out.send(("ready", len(transports), failures))
    stop = loop.create_future()
    loop.add_reader(out.fileno(), lambda: stop.done() or stop.set_result(out.recv()))
    await stop
    loop.remove_reader(out.fileno())
    out.send(("final", {v: t for v, t in arrivals.at.items() if v not in arrivals.reported}))
    for t in transports:
        t.close()


def _generator_process(host: str, port: int, dids: list[str], key_raw: bytes, out: Any) -> None:
    key = Ed25519PrivateKey.from_private_bytes(key_raw)
    asyncio.run(generator(host, port, dids, key, out))


def run(
    url: str,
    hids: list[str],
    dids: list[str],
    key: Ed25519PrivateKey,
    changes: int,
    timeout: float,
    clients: int,
    spy: list[str] | None = None,
) -> dict[str, Any]:
    import multiprocessing
    from multiprocessing.connection import wait

    import httpx

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key_raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for n in range(clients):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_generator_process, args=(host, port, dids[n::clients], key_raw, theirs)
        )
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    t_open = time.monotonic()
    held = 0
    failures: dict[str, int] = {}
    for pipe in pipes:
        kind, n, failed = pipe.recv()
        assert kind == "ready"
        held += n
        for k, v in failed.items():
            failures[k] = failures.get(k, 0) + v
    open_s = time.monotonic() - t_open
    done: dict[int, list[list[float]]] = {}  # version -> each generator's arrival times

    def take(message: tuple[Any, ...]) -> None:
        if message[0] == "done":
            done.setdefault(message[1], []).append(message[2])
        else:  # "final": versions some stream of that generator never got
            for version, times in message[1].items():
                done.setdefault(version, []).append(times)

    latencies: list[float] = []
    versions: list[tuple[int, float]] = []

    def post(client: httpx.Client, n: int) -> tuple[int, float]:
        """Hospital n's change; (its version, when it was sent)."""
        hid = hids[(n * 997) % len(hids)]
        later = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
        status = ("unavailable", "available")[n % 2]
        item = {"code": "neurosurgery", "status": status, "expires_at": later}
        body = json.dumps({"items": [item]}).encode()
        path = "/v1/hospitals/me/availability"
        headers = {
            "content-type": "application/json",
            **sign_request(key, f"hospital:{hid}", "POST", path, body),
        }
        sent = time.monotonic()  # CLOCK_MONOTONIC: the generators' clock too
        r = client.post(path, content=body, headers=headers)
        r.raise_for_status()
        return int(r.json()["version"]), sent

    def await_all(version: int, deadline: float) -> None:
        while len(done.get(version, ())) < clients and time.monotonic() < deadline:
            for pipe in wait(pipes, max(0.0, deadline - time.monotonic())):
                take(pipe.recv())  # type: ignore[union-attr]

    with httpx.Client(base_url=url, timeout=30) as client:
        # Warm-up, not measured: a stream's first bytes (its keep-alive) go out before
        # it reads what it missed from the database, and a push waits for that read.
        # Once this change reached every stream, all of them are past it: the changes
        # below measure a region whose devices are connected, not one connecting.
        t_warm = time.monotonic()
        warm, _ = post(client, changes)
        await_all(warm, time.monotonic() + 300)
        warm_s = time.monotonic() - t_warm
        profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL) if spy else None
        for n in range(changes):
            version, sent = post(client, n)
            versions.append((version, sent))
            await_all(version, sent + timeout)
    if profiler is not None:  # py-spy writes its profile when interrupted
        profiler.send_signal(signal.SIGINT)
        profiler.wait(60)
    for pipe in pipes:
        pipe.send("stop")
    for pipe in pipes:
        while True:
            message = pipe.recv()
            take(message)
            if message[0] == "final":
                break
    for proc in procs:
        proc.join(30)
    reached = 0
    for version, sent in versions:
        for times in done.get(version, ()):
            reached += len(times)
            latencies.extend(t - sent for t in times)
    expected = changes * len(dids)
    return {
        "generator_processes": clients,
        "streams_held": held,
        "stream_failures": failures,
        "streams_open_s": round(open_s, 1),
        "warm_up_s": round(warm_s, 1),
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
    p.add_argument("--clients", type=int, default=4, help="load-generator processes")
    p.add_argument("--profile", type=Path, default=None, help="py-spy speedscope file of the hub")
    args = p.parse_args()
    _raise_nofile()

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
    with region_hub(args.hospitals, args.streams, key, args.pg_workers) as (url, proc, hids, dids):
        spy = None
        if args.profile is not None:  # the hub and its workers during the changes
            spy = [
                    str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                    str(proc.pid), "--subprocesses", "--rate", "200", "--format",
                    "speedscope", "-o", str(args.profile),
                ]  # fmt: skip
        result.update(run(url, hids, dids, key, args.changes, args.timeout, args.clients, spy))
    result["p99_within_target"] = result.get("p99_ms") is not None and result["p99_ms"] <= 1000
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
