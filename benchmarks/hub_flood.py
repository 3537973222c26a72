"""Hub under an unauthenticated flood: do signed case posts keep their latency?

Against a real ``kyukyu hub serve`` (SQLite by default, ``--db`` for another URL) with its
default limits:

1. quiet: one device posts sealed cases (real ``sync.seal`` envelopes, 1 recipient) at a
   steady pace from 127.0.0.1; p50/p99 of the POST round trip;
2. flood: a separate process floods from 127.0.0.2 (loopback only) for a bounded time and
   count: unsigned challenge posts and health checks, badly signed requests, oversized
   headers and half-open connections, over ``--flood-connections`` connections, while
   the device posts again at the same pace.

Prints one JSON line: quiet and flood p50/p99 (ms), their ratio, the flood's requests and
how they were answered (429, 431, 401, ...), and ``within_2x``.

    .venv/bin/python benchmarks/hub_flood.py [--cases 200] [--rate 20] [--db URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from kyukyu.testing import wait_until_serving  # noqa: E402
from sync.seal import seal_case  # noqa: E402
from sync.signing import b64d, b64e, public_key_to_b64, sign_request  # noqa: E402

FLOOD_SOURCE = "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kyukyu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kyukyu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _signed(
    client: httpx.Client, key: Ed25519PrivateKey, key_id: str, method: str, path: str, body: Any
) -> httpx.Response:
    raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", **sign_request(key, key_id, method, path, raw)}
    return client.request(method, path, content=raw, headers=headers)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


# -- the flood (its own process: it must not share the measuring client's GIL) ---------------


async def _flood_connection(port: int, until: float, budget: list[int], seen: Counter[str]) -> None:
    bad_sig = (
        b"GET /v1/devices/me HTTP/1.1\r\nHost: x\r\nX-Kyukyu-Key-Id: device:nope\r\n"
        b"X-Kyukyu-Timestamp: 1\r\nX-Kyukyu-Nonce: aaaaaaaaaaaaaaaaaaaa\r\n"
        b"X-Kyukyu-Signature: AAAA\r\n\r\n"
    )
    requests = [
        b"POST /v1/patients/challenges HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        bad_sig,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
    ]
    i = 0
    while time.monotonic() < until and budget[0] > 0:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(FLOOD_SOURCE, 0)), 5
            )
        except (OSError, TimeoutError):
            seen["connect_failed"] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.monotonic() < until and budget[0] > 0:
                budget[0] -= 1
                writer.write(requests[i % len(requests)])
                i += 1
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 10)
                if not line:
                    seen["closed"] += 1
                    break
                status = line.split(b" ")[1].decode()
                seen[status] += 1
                length = 0
                close = False
                while True:
                    h = await asyncio.wait_for(reader.readline(), 10)
                    if h in (b"\r\n", b""):
                        break
                    name, _, value = h.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value.strip())
                    if name.lower() == b"connection" and b"close" in value.lower():
                        close = True
                if length:
                    await asyncio.wait_for(reader.readexactly(length), 10)
                if close:
                    break
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            seen["error"] += 1
        finally:
            writer.close()


async def _half_open(port: int, until: float, count: int, seen: Counter[str]) -> None:
    """Connections that send half a header and wait (the server's timeouts close them)."""
    held = []
    for _ in range(count):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(FLOOD_SOURCE, 0))
            w.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            held.append(w)
            seen["half_open"] += 1
        except OSError:
            seen["half_open_refused"] += 1
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    for w in held:
        w.close()


async def _flood(port: int, seconds: float, connections: int, max_requests: int) -> dict[str, Any]:
    until = time.monotonic() + seconds
    budget = [max_requests]
    seen: Counter[str] = Counter()
    started = time.monotonic()
    await asyncio.gather(
        _half_open(port, until, 20, seen),
        *(_flood_connection(port, until, budget, seen) for _ in range(connections)),
    )
    took = time.monotonic() - started
    answered = sum(v for k, v in seen.items() if k.isdigit())
    return {"seconds": round(took, 1), "answered": answered, "rps": round(answered / took), **seen}


def flood_main(port: int, seconds: float, connections: int, max_requests: int) -> None:
    print(json.dumps(asyncio.run(_flood(port, seconds, connections, max_requests))))


# -- the measurement --------------------------------------------------------------------------


def _post_cases(
    url: str,
    device: tuple[Ed25519PrivateKey, str],
    hid: str,
    envelopes: list[tuple[str, bytes]],
    rate: float,
) -> list[float]:
    key, key_id = device
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        next_at = time.monotonic()
        for case_id, env in envelopes:
            next_at += 1 / rate
            body = {
                "case_id": case_id,
                "recipients": [hid],
                "envelope": base64.b64encode(env).decode(),
            }
            raw = json.dumps(body, separators=(",", ":")).encode()
            headers = {
                "content-type": "application/json",
                "Idempotency-Key": case_id,
                **sign_request(key, key_id, "POST", "/v1/cases", raw),
            }
            t0 = time.perf_counter()
            r = client.post("/v1/cases", content=raw, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                raise SystemExit(f"case post failed: {r.status_code} {r.text[:200]}")
            time.sleep(max(0.0, next_at - time.monotonic()))
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200, help="cases per phase")
    ap.add_argument("--rate", type=float, default=20.0, help="case posts per second")
    ap.add_argument("--db", default=None, help="hub database URL (default: a new SQLite file)")
    ap.add_argument("--flood-connections", type=int, default=32)
    ap.add_argument("--flood-max-requests", type=int, default=200_000)
    ap.add_argument("--flood-worker", nargs=4, metavar=("PORT", "S", "CONN", "MAX"))
    args = ap.parse_args()
    if args.flood_worker:
        port, seconds, conns, most = args.flood_worker
        flood_main(int(port), float(seconds), int(conns), int(most))
        return
    tmp = Path(tempfile.mkdtemp(prefix="kyukyu-flood-"))
    db = args.db or f"sqlite:///{tmp / 'hub.db'}"
    _kyukyu("hub", "init", "--db", db, "--out", str(tmp / "op.json"))
    creds = json.loads((tmp / "op.json").read_text())
    operator = (Ed25519PrivateKey.from_private_bytes(b64d(creds["private_key"])), creds["key_id"])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KYUKYU_HUB_CONFIG": str(tmp / "none.env")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kyukyu", "hub", "serve", "--db", db, "--port", str(port),
         "--env", "test", "--key", str(tmp / "hub.key"), "--log-file", str(tmp / "hub.log")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        wait_until_serving(url, proc)
        with httpx.Client(base_url=url, timeout=30) as c:
            r = _signed(c, *operator, "POST", "/v1/enrollment-tokens", {"fire_department": "FD"})
            dkey = Ed25519PrivateKey.generate()
            r = c.post(
                "/v1/devices/enroll",
                json={
                    "token": r.json()["token"],
                    "public_key": public_key_to_b64(dkey.public_key()),
                    "name": "bench",
                },
            )
            device_id = r.json()["device_id"]
            hpke = X25519PrivateKey.generate()
            hkey = Ed25519PrivateKey.generate()
            from cryptography.hazmat.primitives import serialization

            raw_hpke = hpke.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            r = _signed(
                c, *operator, "POST", "/v1/hospitals",
                {"name": "病院", "lat": 35.7, "lon": 139.7, "hpke_public_key": b64e(raw_hpke),
                 "signing_public_key": public_key_to_b64(hkey.public_key())},
            )  # fmt: skip
            hid = r.json()["hospital_id"]
        payload = json.dumps({"resourceType": "Bundle", "pad": "x" * 3000}).encode()

        def envelopes(tag: str) -> list[tuple[str, bytes]]:
            out = []
            for i in range(args.cases):
                case_id = f"{tag}-{i}-{secrets.token_hex(4)}"
                out.append(
                    (
                        case_id,
                        seal_case(
                            payload,
                            case_id=case_id,
                            device_id=device_id,
                            device_key=dkey,
                            recipients={hid: hpke.public_key()},
                        ),
                    )
                )
            return out

        device = (dkey, f"device:{device_id}")
        _post_cases(url, device, hid, envelopes("warm")[:20], args.rate)
        quiet = _post_cases(url, device, hid, envelopes("quiet"), args.rate)
        loud_envelopes = envelopes("flood")
        seconds = args.cases / args.rate + 3
        flooder = subprocess.Popen(
            [sys.executable, __file__, "--flood-worker", str(port), str(seconds),
             str(args.flood_connections), str(args.flood_max_requests)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.5)  # the flood is under way
        loud = _post_cases(url, device, hid, loud_envelopes, args.rate)
        out, _ = flooder.communicate(timeout=seconds + 60)
        flood = json.loads(out.strip().splitlines()[-1])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    q99, f99 = _pct(quiet, 0.99), _pct(loud, 0.99)
    print(
        json.dumps(
            {
                "benchmark": "hub_flood",
                "db": db.split(":", 1)[0],
                "cases_per_phase": args.cases,
                "rate_per_s": args.rate,
                "quiet_p50_ms": _pct(quiet, 0.5),
                "quiet_p99_ms": q99,
                "flood_p50_ms": _pct(loud, 0.5),
                "flood_p99_ms": f99,
                "p99_ratio": round(f99 / q99, 2),
                "within_2x": f99 <= 2 * q99,
                "flood": flood,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
