"""Hub load: hospital SSE streams, devices posting sealed 4 KB cases to 5 recipients each.

For SQLite and PostgreSQL in one run, against a real ``kyukyu hub serve`` process
(one uvicorn worker on SQLite, --pg-workers on PostgreSQL, --threads request threads each) on
this machine:

- ``max``: cases/s sustained by concurrent posters, and POST -> all-5-recipients latency;
- ``rate``: p50/p99 POST -> all-recipients latency at a fixed 100 cases/s;
- ``summary``: end-to-end POST /v1/summaries p50/p99 (certificate check, audit, synthetic
  source) on a 100,000-patient source;
- ``rss_per_1000_streams_mb``: the hub's resident memory (all its processes) with the
  streams open, minus before they opened, per 1,000 streams;
- ``db_limit`` (PostgreSQL): the same statement the hub runs for a case (the CTE of
  ``hub_server.crud.case_batch`` for a batch of one, with a 4 KB envelope, 5 random
  recipients of the registered hospitals and its NOTIFY, each a durable transaction), on the same
  database right after the hub's run (hub stopped), by ``pgbench -M prepared`` (custom
  script) and by a psycopg loop (no web layer), 16 connections each;
  ``db_limit_cases_per_s`` is the better of the two and ``hub_to_db_ratio`` = hub
  cases/s / that.

The load generator shares the machine (2 cores) with the hub and the database, and the
SSE clients are raw asyncio sockets to keep their own cost low. Prints one JSON line.

    .venv/bin/python benchmarks/hub_load.py [--streams 1000] [--seconds 8] [--patients 100000]
        [--envelope opaque|v1|v2] [--profile DIR]   # py-spy flame graphs of the max phase

``--envelope``: ``opaque`` (default) posts 4 KB of random bytes (the hub in the test
environment routes them unread); ``v1`` and ``v2`` post real sealed cases
(``sync.seal.seal_case``, a 4 KB payload to 5 recipients; v2 to the hospitals' hybrid
keys, and the hub started with ``KYUKYU_HUB_REQUIRE_PQ=true``), which the hub parses and
whose device signature it checks. The envelopes are sealed before the phases (one per
post, each with its own case id and recipients: ``preseal_s``), so sealing does not
take the shared CPU while the hub is measured; a post beyond them seals on the spot
(``sealed_inline``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from kyukyu.testing import wait_until_serving  # noqa: E402
from sync.envelope import V1, V2  # noqa: E402
from sync.seal import SealingKeys, seal_case  # noqa: E402
from sync.signing import b64d, b64e, public_key_to_b64, sign_request  # noqa: E402
from sync.xwing import XWingPrivateKey  # noqa: E402

CASE_ID = re.compile(rb'"case_id":"([^"]+)"')


class Signer:
    def __init__(self, key_id: str, key: Ed25519PrivateKey) -> None:
        self.key_id, self.key = key_id, key

    def headers(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        return sign_request(self.key, self.key_id, method, path, body)


def _pct(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raise_nofile() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(hard)


# One loopback address and a few keys stand for thousands of hospitals and devices: the
# per-address and per-key limits of issue 10 would otherwise throttle the load generator.
BENCH_ENV = {
    "KYUKYU_HUB_MAX_CONNECTIONS": "30000",
    "KYUKYU_HUB_MAX_CONNECTIONS_PER_CLIENT": "30000",
    "KYUKYU_HUB_UNSIGNED_RATE": "1000000",
    "KYUKYU_HUB_UNSIGNED_BURST": "1000000",
    "KYUKYU_HUB_IDENTITY_RATE": "1000000",
    "KYUKYU_HUB_IDENTITY_BURST": "1000000",
    # 10,000 streams connect within seconds to one process: its loop may take longer than
    # the 10 s header timeout to read them all (a reconnect storm; real clients retry).
    "KYUKYU_HUB_HEADER_TIMEOUT_SECONDS": "120",
}


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (MB)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, ValueError):
            continue
    return total / 1024


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process and its descendants (seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11]) / tick
            system += int(fields[12]) / tick
            for t in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(k) for k in (t / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return user, system


def others_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this load generator and of every PostgreSQL process."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    tick = os.sysconf("SC_CLK_TCK")
    db = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name in ("postgres", "postmaster"):
            fields = text.rsplit(")", 1)[1].split()
            db += (int(fields[11]) + int(fields[12])) / tick
    return {"load": me.ru_utime + me.ru_stime, "db": db}


@contextlib.contextmanager
def hub_process(
    db_url: str,
    tmp: Path,
    roots: Path,
    workers: int = 1,
    threads: int = 0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    log = open(Path(tempfile.gettempdir()) / f"kyukyu-hub-bench-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kyukyu",
            "hub",
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--env",
            "test",
            "--trust-roots",
            str(roots),
            "--allow-test-roots",
            "--pool-size",
            # PostgreSQL's 100 connections are shared by every worker (two pools each).
            "20" if workers == 1 else "10",
            "--workers",
            str(workers),
            *(["--threads", str(threads)] if threads else []),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **BENCH_ENV, **(extra_env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        log_path = Path(tempfile.gettempdir()) / f"kyukyu-hub-bench-{port}.log"
        wait_until_serving(url, proc, why=lambda: log_path.read_text()[-2000:])
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _profile_phase(hub_pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on the hub (its worker processes too) for the max phase only."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(hub_pid),
            "--subprocesses", "--gil", "--rate", "100", "--duration", str(max(1, int(seconds))),
            "--format", "speedscope", "-o", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def operator_for(db_url: str, tmp: Path) -> Signer:
    out = tmp / f"op-{secrets.token_hex(4)}.json"
    subprocess.run(
        [sys.executable, "-m", "kyukyu", "hub", "init", "--db", db_url, "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    creds = json.loads(out.read_text())
    return Signer(creds["key_id"], Ed25519PrivateKey.from_private_bytes(b64d(creds["private_key"])))


async def call(
    client: httpx.AsyncClient,
    signer: Signer | None,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    h = {"content-type": "application/json"} if body is not None else {}
    if signer is not None:
        h.update(signer.headers(method, path, raw))
    h.update(headers or {})
    return await client.request(method, path, content=raw, headers=h)


class RawPool:
    """Keep-alive HTTP/1.1 connections for the posters: much lighter than httpx per request,
    so more of the shared CPU is left to the hub being measured."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def start(self) -> None:
        for _ in range(self.size):
            self.free.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.free.empty():
            _, w = self.free.get_nowait()
            w.close()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode() + body
        conn = await self.free.get()
        try:
            for attempt in range(2):
                reader, writer = conn
                try:
                    writer.write(head)
                    await writer.drain()
                    status_line = await reader.readline()
                    if not status_line:
                        raise ConnectionError("closed by the server (keep-alive timeout)")
                    length = 0
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    await reader.readexactly(length)
                    return int(status_line.split()[1])
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    conn = await asyncio.open_connection(self.host, self.port)
                    if attempt:
                        raise
            raise AssertionError("unreachable")
        finally:
            self.free.put_nowait(conn)


class Arrivals:
    def __init__(self) -> None:
        self.seen: dict[str, list[float]] = {}
        self.complete: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}

    def record(self, case_id: str, need: int) -> None:
        got = self.seen.setdefault(case_id, [])
        got.append(time.perf_counter())
        if len(got) == need:
            self.complete[case_id] = got[-1]


async def sse_stream(
    host: str,
    port: int,
    signer: Signer,
    arrivals: Arrivals,
    connected: list[int],
    failures: dict[str, int],
    retries: dict[str, int],
) -> None:
    """One hospital's stream. A connection refused or reset before its 200 is tried
    again after a pause, up to three times, as the receivers do (``stream_retries``
    counts why); ``stream_failures`` counts the streams never held."""
    for attempt in range(4):
        try:
            await _sse_stream(host, port, signer, arrivals, connected)
            return
        except asyncio.CancelledError:
            raise
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if attempt < 3 and not getattr(exc, "held", False):
                retries[type(exc).__name__] = retries.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(1.0 + attempt + secrets.randbelow(1000) / 1000)
                continue
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            return
        except Exception as exc:  # counted: why a stream was not held
            key = str(exc)[:40] if isinstance(exc, RuntimeError) else type(exc).__name__
            failures[key] = failures.get(key, 0) + 1
            return


async def _sse_stream(
    host: str, port: int, signer: Signer, arrivals: Arrivals, connected: list[int]
) -> None:
    path = "/v1/hospitals/me/events"
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    head = "".join(f"{k}: {v}\r\n" for k, v in signer.headers("GET", path).items())
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n{head}\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if not status:
        raise ConnectionResetError("closed before the status line")
    if b" 200 " not in status:
        raise RuntimeError(f"refused {status.decode(errors='replace').strip()}")
    connected[0] += 1
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                m = CASE_ID.search(line)
                if m:
                    arrivals.record(m.group(1).decode(), 5)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        exc.held = True  # type: ignore[union-attr]  # lost after its 200: not tried again
        raise
    finally:
        writer.close()


async def load(
    url: str,
    db_url: str,
    tmp: Path,
    streams: int,
    seconds: float,
    posters: int,
    hub_pid: int,
    hospital_ids: list[str],
    profile: Path | None = None,
    envelope_kind: str = "opaque",
) -> dict[str, Any]:
    operator = operator_for(db_url, tmp)
    host, port = url.removeprefix("http://").split(":")
    # keepalive_expiry below uvicorn's 5 s keep-alive: never reuse a connection it is closing.
    limits = httpx.Limits(
        max_connections=posters + 8, max_keepalive_connections=posters + 8, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        hospitals: list[tuple[str, Signer]] = []
        sealing: dict[str, SealingKeys] = {}  # hospital id -> its public keys (v1, v2)
        sem = asyncio.Semaphore(16)

        async def register(i: int) -> None:
            key = Ed25519PrivateKey.generate()
            x25519 = X25519PrivateKey.generate().public_key()
            xwing = XWingPrivateKey.generate().public_key() if envelope_kind == "v2" else None
            body = {
                "name": f"h{i}",
                "lat": 35 + i / 1000,
                "lon": 139.0,
                "hpke_public_key": b64e(x25519.public_bytes_raw()),
                "signing_public_key": public_key_to_b64(key.public_key()),
            }
            if xwing is not None:
                body["xwing_public_key"] = b64e(xwing.to_bytes())
            async with sem:
                r = await call(client, operator, "POST", "/v1/hospitals", body)
            r.raise_for_status()
            hid = r.json()["hospital_id"]
            hospitals.append((hid, Signer(f"hospital:{hid}", key)))
            sealing[hid] = SealingKeys(x25519=x25519, xwing=xwing)

        await asyncio.gather(*(register(i) for i in range(streams)))
        devices = []
        for i in range(posters):
            r = await call(
                client,
                operator,
                "POST",
                "/v1/enrollment-tokens",
                {"fire_department": f"横浜市消防局{i % 4}"},
            )
            key = Ed25519PrivateKey.generate()
            r = await call(
                client,
                None,
                "POST",
                "/v1/devices/enroll",
                {
                    "token": r.json()["token"],
                    "public_key": public_key_to_b64(key.public_key()),
                    "name": f"d{i}",
                },
            )
            devices.append(Signer(f"device:{r.json()['device_id']}", key))
        arrivals = Arrivals()
        connected = [0]
        failures: dict[str, int] = {}
        retries: dict[str, int] = {}
        tasks = []
        await asyncio.sleep(1.0)
        rss_before = rss_mb(hub_pid)
        for i, (_, signer) in enumerate(hospitals):
            tasks.append(
                asyncio.create_task(
                    sse_stream(host, int(port), signer, arrivals, connected, failures, retries)
                )
            )
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 60 + streams / 100
        t_connect = time.monotonic()
        while connected[0] < streams and time.monotonic() < deadline:
            if connected[0] + sum(failures.values()) >= streams:
                break
            await asyncio.sleep(0.1)
        connect_s = time.monotonic() - t_connect
        # Steady state: the hub has read every new stream's backlog (none here) once its
        # CPU is back near idle (at most 60 s).
        t_settle = time.monotonic()
        while time.monotonic() - t_settle < 60:
            before = sum(cpu_seconds(hub_pid))
            await asyncio.sleep(1.0)
            if sum(cpu_seconds(hub_pid)) - before < 0.25:
                break
        settle_s = time.monotonic() - t_settle
        rss_after = rss_mb(hub_pid)
        ids = [h for h, _ in hospitals]
        hospital_ids.extend(ids)
        envelope = base64.b64encode(secrets.token_bytes(4096)).decode()
        started: dict[str, float] = {}
        errors = [0]
        refused = [0]
        sealer = Sealer(envelope_kind, sealing, ids)
        t_seal = time.perf_counter()
        for i in range(sealer.budget(seconds) if envelope_kind != "opaque" else 0):
            sealer.preseal(devices[i % len(devices)])
        preseal_s = time.perf_counter() - t_seal

        pool = RawPool(host, int(port), posters)
        await pool.start()

        async def post_one(device: Signer) -> None:
            if envelope_kind == "opaque":
                case_id = secrets.token_hex(8)
                recipients = json.dumps(secrets.SystemRandom().sample(ids, 5))
                sealed = envelope
            else:
                case_id, recipients, sealed = sealer.take(device)
            body = (
                f'{{"case_id":"{case_id}","recipients":{recipients},"envelope":"{sealed}"}}'
            ).encode()
            headers = {**device.headers("POST", "/v1/cases", body), "Idempotency-Key": case_id}
            started[case_id] = time.perf_counter()
            status = await pool.post("/v1/cases", body, headers)
            if status != 201:
                errors[0] += 1
                if status == 503:
                    refused[0] += 1
                started.pop(case_id, None)

        async def settle(case_ids: list[str], timeout: float = 20) -> list[float]:
            end = time.monotonic() + timeout
            while time.monotonic() < end and any(c not in arrivals.complete for c in case_ids):
                await asyncio.sleep(0.05)
            return [arrivals.complete[c] - started[c] for c in case_ids if c in arrivals.complete]

        # Phase 1: as fast as the posters can go.
        spy = _profile_phase(hub_pid, seconds, profile) if profile is not None else None
        cpu0 = cpu_seconds(hub_pid)
        others0 = others_cpu_seconds()
        t0 = time.perf_counter()
        stop = t0 + seconds

        async def poster(device: Signer) -> None:
            while time.perf_counter() < stop:
                await post_one(device)

        await asyncio.gather(*(poster(d) for d in devices))
        elapsed = time.perf_counter() - t0
        cpu1 = cpu_seconds(hub_pid)
        others1 = others_cpu_seconds()
        hub_user, hub_sys = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        max_ids = list(started)
        if spy is not None:
            await asyncio.to_thread(spy.wait)
        max_lat = await settle(max_ids)
        cases_per_s = len(max_ids) / elapsed
        # Phase 2: a fixed 100 cases/s.
        started.clear()
        rate, n = 100.0, int(100 * min(seconds, 5))
        t1 = time.perf_counter()
        pending = []
        for i in range(n):
            await asyncio.sleep(max(0.0, t1 + i / rate - time.perf_counter()))
            pending.append(asyncio.create_task(post_one(devices[i % len(devices)])))
        await asyncio.gather(*pending)
        rate_ids = list(started)
        rate_lat = await settle(rate_ids)
        await pool.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "envelope": envelope_kind,
        "envelope_bytes": sealer.envelope_bytes or 4096,
        "preseal_s": round(preseal_s, 1),
        "sealed_inline": sealer.inline,
        "streams": connected[0],
        "cases_per_s": round(cases_per_s, 1),
        # The hub's own CPU per case in the max phase (all its processes, push included).
        "hub_cpu_ms_per_case": round(1000 * (hub_user + hub_sys) / max(1, len(max_ids)), 2),
        "hub_cpu_system_share": round(hub_sys / max(1e-9, hub_user + hub_sys), 2),
        # Where the rest of the two cores went in the max phase (per case): this load
        # generator (posters and every stream's reader) and PostgreSQL (every process).
        "load_generator_cpu_ms_per_case": round(
            1000 * (others1["load"] - others0["load"]) / max(1, len(max_ids)), 2
        ),
        "postgres_cpu_ms_per_case": round(
            1000 * (others1["db"] - others0["db"]) / max(1, len(max_ids)), 2
        ),
        "max_phase_s": round(elapsed, 1),
        "max_p50_ms": _pct(max_lat, 0.50),
        "max_p99_ms": _pct(max_lat, 0.99),
        "max_delivered": f"{len(max_lat)}/{len(max_ids)}",
        "rate100_p50_ms": _pct(rate_lat, 0.50),
        "rate100_p99_ms": _pct(rate_lat, 0.99),
        "rate100_delivered": f"{len(rate_lat)}/{len(rate_ids)}",
        "post_errors": errors[0],
        "post_503": refused[0],
        "stream_failures": failures,
        "stream_retries": retries,
        "stream_connect_s": round(connect_s, 1),
        "stream_settle_s": round(settle_s, 1),
        "hub_rss_mb_idle": round(rss_before, 1),
        "hub_rss_mb_streams": round(rss_after, 1),
        "rss_per_1000_streams_mb": round((rss_after - rss_before) * 1000 / max(1, connected[0]), 1),
    }


class Sealer:
    """Real sealed cases for ``--envelope v1|v2``: one per post (its own case id and five
    random recipients), sealed by the posting device ahead of the phases."""

    def __init__(self, kind: str, keys: dict[str, SealingKeys], ids: list[str]) -> None:
        self.kind, self.keys, self.ids = kind, keys, ids
        self.version = V2 if kind == "v2" else V1
        self.ready: dict[str, list[tuple[str, str, str]]] = {}
        self.inline = 0
        self.envelope_bytes = 0
        self.payload = secrets.token_bytes(4096)

    @staticmethod
    def budget(seconds: float) -> int:
        """Enough for the max phase at up to 1,500 cases/s and the 100 cases/s phase."""
        return int(1500 * seconds + 100 * min(seconds, 5))

    def _seal(self, device: Signer) -> tuple[str, str, str]:
        case_id = secrets.token_hex(8)
        recipients = secrets.SystemRandom().sample(self.ids, 5)
        sealed = seal_case(
            self.payload,
            case_id=case_id,
            device_id=device.key_id.removeprefix("device:"),
            device_key=device.key,
            recipients={r: self.keys[r] for r in recipients},
            version=self.version,
        )
        self.envelope_bytes = len(sealed)
        return case_id, json.dumps(recipients), base64.b64encode(sealed).decode()

    def preseal(self, device: Signer) -> None:
        self.ready.setdefault(device.key_id, []).append(self._seal(device))

    def take(self, device: Signer) -> tuple[str, str, str]:
        waiting = self.ready.get(device.key_id)
        if waiting:
            return waiting.pop()
        self.inline += 1
        return self._seal(device)


def db_limit(
    db_url: str, hospital_ids: list[str], seconds: float, connections: int
) -> dict[str, Any]:
    """The database alone: the hub's case statement + durable commit on ``connections``
    psycopg connections (threads; psycopg releases the GIL while it waits)."""
    import threading
    from datetime import UTC, datetime, timedelta

    import psycopg

    from hub_server.core.db import libpq_url
    from hub_server.core.events import notification_prefix_suffix
    from hub_server.crud.case_batch import CASE_BATCH_SQL

    conninfo = libpq_url(db_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        device_id = conn.execute("SELECT id FROM devices LIMIT 1").fetchone()[0]
    envelope = secrets.token_bytes(4096)
    env_b64 = base64.b64encode(envelope).decode()
    rng = secrets.SystemRandom()
    counts = [0] * connections
    stop = time.perf_counter() + seconds
    errors: list[str] = []

    def params() -> dict[str, Any]:
        case_id = "db-" + secrets.token_hex(8)
        now = datetime.now(UTC).replace(tzinfo=None)
        recipients = sorted(rng.sample(hospital_ids, 5))
        meta = {"type": "case", "case_id": case_id, "device_id": device_id,
                "fire_department": "横浜市消防局0", "created_at": now.isoformat()}  # fmt: skip
        pre, suf = notification_prefix_suffix({**meta, "envelope": env_b64}, "bench", 5)
        one = {
            "key_id": f"device:{device_id}", "nonce": secrets.token_urlsafe(16),
            "expires": now + timedelta(minutes=10), "idem": case_id,
            "hash": secrets.token_hex(32), "response": json.dumps(meta), "now": now,
            "case_id": case_id, "device_id": device_id, "envelope": envelope,
            "size": len(envelope),
            "details": json.dumps({"recipients": recipients, "size": 4096}),
            "payload": json.dumps(meta), "pre": pre, "suf": suf,
        }  # fmt: skip
        # A batch of one: every column an array of one, the recipients by case number.
        return {**{k: [v] for k, v in one.items()}, "r_ord": [1] * 5, "r_hid": recipients}

    def worker(i: int) -> None:
        try:
            with psycopg.connect(conninfo) as conn:
                while time.perf_counter() < stop:
                    p = params()
                    conn.execute(CASE_BATCH_SQL, p).fetchall()
                    conn.commit()  # synchronous_commit=on, as the hub's case transaction
                    counts[i] += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    out: dict[str, Any] = {
        "db_limit_cases_per_s": round(sum(counts) / elapsed, 1),
        "db_limit_connections": connections,
    }
    if errors:
        out["db_limit_errors"] = errors[:3]
    return out


def _pgbench_script(n_hospitals: int) -> str:
    """The hub's case statement for pgbench: the same CTE for a batch of one, its arrays
    made in SQL from a random case number, five random registered hospitals (a number
    drawn twice names its hospital once) and a random 4 KB envelope."""
    from hub_server.crud.case_batch import CASE_BATCH_SQL

    cid = "('db-' || :cid)"
    env = "(SELECT {} FROM bench_env)"
    subs = {
        "key_id": "('device:' || " + env.format("device_id") + ")",
        "nonce": "md5(:cid::text || random()::text)",
        "expires": "(localtimestamp + interval '10 minutes')",
        "idem": cid,
        "hash": "md5(:cid::text)",
        "response": "('{\"case_id\":\"' || " + cid + " || '\",\"created_at\":\"x\"}')",
        "now": "localtimestamp",
        "case_id": cid,
        "device_id": env.format("device_id"),
        "envelope": env.format("envelope"),
        "size": "4096",
        "details": env.format("details"),
        "payload": env.format("payload"),
        "pre": "'{\"o\":\"bench\",\"e\":'",
        "suf": env.format("suffix"),
    }  # fmt: skip
    chosen = "FROM bench_h WHERE n IN (" + ", ".join(f":h{i}" for i in range(5)) + ")"
    sql = CASE_BATCH_SQL
    for name, expr in subs.items():
        sql = sql.replace(f"%({name})b", f"ARRAY[{expr}]")
    sql = sql.replace("%(r_ord)b", f"(SELECT array_agg(1::bigint) {chosen})")
    sql = sql.replace("%(r_hid)b", f"(SELECT array_agg(id) {chosen})")
    assert "%(" not in sql
    head = "\\set cid random(1, 9000000000000000000)\n" + "".join(
        f"\\set h{i} random(1, {n_hospitals})\n" for i in range(5)
    )
    return head + " ".join(sql.split()) + ";\n"


def db_limit_pgbench(
    db_url: str, hospital_ids: list[str], seconds: float, connections: int, tmp: Path
) -> dict[str, Any]:
    """The database alone, measured by pgbench (C, no Python in the loop) running the
    hub's case statement, each one its own durable transaction (synchronous_commit on)."""
    import psycopg

    from hub_server.core.db import libpq_url

    conninfo = libpq_url(db_url)
    envelope = secrets.token_bytes(4096)
    meta = json.dumps({"type": "case", "case_id": "db-x", "device_id": "d" * 32,
                       "fire_department": "横浜市消防局0",
                       "created_at": "2026-01-01T00:00:00"})  # fmt: skip
    suffix = (
        ',"d":'
        + json.dumps({**json.loads(meta), "envelope": base64.b64encode(envelope).decode()})
        + "}"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        device_id = conn.execute("SELECT id FROM devices LIMIT 1").fetchone()[0]
        conn.execute("DROP TABLE IF EXISTS bench_env, bench_h")
        conn.execute(
            "CREATE TABLE bench_env AS SELECT %s::text AS device_id, %s::bytea AS envelope, "
            "%s::text AS details, %s::text AS payload, %s::text AS suffix",
            (device_id, envelope, json.dumps({"recipients": hospital_ids[:5], "size": 4096}),
             meta, suffix),
        )  # fmt: skip
        conn.execute("CREATE TABLE bench_h (n int PRIMARY KEY, id text)")
        with conn.cursor().copy("COPY bench_h (n, id) FROM STDIN") as copy:
            for i, hid in enumerate(hospital_ids, 1):
                copy.write_row((i, hid))
        conn.execute("ANALYZE bench_h")
    script = tmp / "case.pgbench.sql"
    script.write_text(_pgbench_script(len(hospital_ids)))
    run = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", "2",
         "-T", str(int(seconds)),
         "-f", str(script), conninfo],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    m = re.search(r"tps = ([0-9.]+)", run.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", run.stdout)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_env, bench_h")
    if m is None:
        return {"db_limit_error": (run.stderr or run.stdout)[-300:]}
    return {
        "db_limit_cases_per_s": round(float(m.group(1)), 1),
        "db_limit_connections": connections,
        "db_limit_failed": int(failed.group(1)) if failed else None,
    }


async def summaries(url: str, db_url: str, tmp: Path, card: Any, lookups: int) -> dict[str, Any]:
    operator = operator_for(db_url, tmp)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        r = await call(client, operator, "POST", "/v1/enrollment-tokens", {"fire_department": "fd"})
        key = Ed25519PrivateKey.generate()
        r = await call(
            client,
            None,
            "POST",
            "/v1/devices/enroll",
            {
                "token": r.json()["token"],
                "public_key": public_key_to_b64(key.public_key()),
                "name": "s",
            },
        )
        device = Signer(f"device:{r.json()['device_id']}", key)
        body = {
            "certificate": base64.b64encode(card.auth_certificate_der).decode(),
            "consent": "consented",
            "evidence": {"kind": "face_check"},
            "crew_member": "A",
        }
        times = []
        for i in range(lookups + 10):
            t = time.perf_counter()
            r = await call(client, device, "POST", "/v1/summaries", body)
            if r.status_code != 200 or r.json()["status"] != "found":
                raise RuntimeError(f"summary failed: {r.status_code} {r.text[:200]}")
            if i >= 10:
                times.append(time.perf_counter() - t)
    return {
        "summary_p50_ms": _pct(times, 0.5),
        "summary_p99_ms": _pct(times, 0.99),
        "summary_lookups": lookups,
    }


def backend(
    name: str, db_url: str, tmp: Path, roots: Path, card_setup: Any, args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    card = None
    if args.patients:
        from kyukyu.testing import seed_with_cards

        t = time.perf_counter()
        report = seed_with_cards(
            db_url,
            patients=args.patients,
            cards=1,
            cards_dir=tmp / f"cards-{name}",
            ca_dir=card_setup,
            key_factory=_pool(),
        )
        out["seed_s"] = round(time.perf_counter() - t, 1)
        from edge.card_sim import CardImage

        card = CardImage.load(report.cards[0].path)
    workers = args.pg_workers if name == "postgres" else 1
    out["hub_workers"] = workers
    out["hub_threads"] = args.threads or 40
    profile = None
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile = args.profile / f"hub-{name}.speedscope.json"
    hospital_ids: list[str] = []
    # v2: the platform's post-quantum policy on (it refuses anything but v2).
    pq = {"KYUKYU_HUB_REQUIRE_PQ": "true"} if args.envelope == "v2" else None
    with hub_process(db_url, tmp, roots, workers, args.threads, pq) as (url, proc):
        out.update(
            asyncio.run(
                load(
                    url, db_url, tmp, args.streams, args.seconds, args.posters, proc.pid,
                    hospital_ids, profile, args.envelope,
                )
            )
        )  # fmt: skip
        if card is not None:
            out.update(asyncio.run(summaries(url, db_url, tmp, card, args.lookups)))
    if name == "postgres" and hospital_ids:
        seconds = min(args.seconds, 8)
        if shutil.which("pgbench"):
            out.update(db_limit_pgbench(db_url, hospital_ids, seconds, args.db_connections, tmp))
            py = db_limit(db_url, hospital_ids, seconds, args.db_connections)
            out["db_limit_pgbench_cases_per_s"] = out.pop("db_limit_cases_per_s", None)
            out["db_limit_psycopg_cases_per_s"] = py["db_limit_cases_per_s"]
            # The database's limit is the best either driver reached (the ratio's denominator).
            out["db_limit_cases_per_s"] = max(
                out["db_limit_pgbench_cases_per_s"] or 0.0, py["db_limit_cases_per_s"]
            )
        else:
            out.update(db_limit(db_url, hospital_ids, seconds, args.db_connections))
        if out.get("db_limit_cases_per_s"):
            out["hub_to_db_ratio"] = round(out["cases_per_s"] / out["db_limit_cases_per_s"], 2)
    return out


def _pool() -> Any:
    from edge.card_sim import KeyPool

    return KeyPool(1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--posters", type=int, default=32)
    p.add_argument("--patients", type=int, default=100_000)
    p.add_argument("--lookups", type=int, default=300)
    p.add_argument("--pg-workers", type=int, default=2, help="uvicorn workers on PostgreSQL")
    p.add_argument("--threads", type=int, default=8, help="request threads per hub process")
    p.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    p.add_argument("--profile", type=Path, default=None, help="py-spy profiles of the hub here")
    p.add_argument(
        "--envelope",
        choices=["opaque", "v1", "v2"],
        default="opaque",
        help="random bytes (default) or real sealed cases of this version",
    )
    p.add_argument(
        "--db-connections", type=int, default=16, help="connections of the DB-limit driver"
    )
    args = p.parse_args()
    nofile = _raise_nofile()
    if nofile < args.streams + 1000:
        print(f"open files limit {nofile} is below --streams + 1000", file=sys.stderr)
    try:  # the load generator's own event loop: uvloop leaves more of the shared CPU to the hub
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    from edge.card_sim import TestCA

    result: dict[str, Any] = {
        "benchmark": "hub_load",
        "streams_requested": args.streams,
        "recipients_per_case": 5,
        "payload_bytes": 4096,
        "envelope": args.envelope,
        "posters": args.posters,
        "note": "load generator, hub and database share this 2-core machine",
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ca_dir = tmp / "ca"
        ca = TestCA.create(ca_dir, key_factory=_pool())
        roots = tmp / "roots"
        roots.mkdir()
        for n, cert in (("auth", ca.auth_root), ("phone", ca.phone_auth_root)):
            (roots / f"{n}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if args.only in (None, "sqlite"):
            result["sqlite"] = backend(
                "sqlite", f"sqlite:///{tmp / 'hub.db'}", tmp, roots, ca_dir, args
            )
        if args.only in (None, "postgres"):
            from tests.components import fresh_postgres_database

            try:
                with fresh_postgres_database() as url:
                    result["postgres"] = backend("postgres", url, tmp, roots, ca_dir, args)
            except BaseException as exc:  # pytest.fail() when PostgreSQL is absent
                import traceback

                traceback.print_exc()
                result["postgres"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
