"""Seal + queue + drain a backlog of 1,000 cases (5 recipients, 4 KB) to a local hub.

The hub is the real one (``kyukyu hub serve``, SQLite, its own process on
loopback). The "network comes back" after the backlog is queued: the drain is
timed from then until the outbox is empty. Every case is sealed both as envelope v1
(X25519) and v2 (MLKEM768-X25519 hybrid) and opened in both, so the seal and open
medians of the two stand side by side (``versions``); the backlog drained is the
``--envelope`` one (v2 by default). Prints one JSON line.

    .venv/bin/python benchmarks/sync_drain.py [--cases 1000] [--concurrency 8] [--envelope v1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kyukyu.testing import enroll_device, free_port, register_hospital  # noqa: E402
from sync import SignedHttp  # noqa: E402
from sync.client import PlatformClient  # noqa: E402
from sync.envelope import V1, V2  # noqa: E402
from sync.outbox import Outbox  # noqa: E402
from sync.seal import OpeningKeys, SealingKeys, open_case, seal_case  # noqa: E402
from sync.sender import Sender  # noqa: E402
from sync.signing import b64d, public_key_to_b64  # noqa: E402
from sync.xwing import XWingPrivateKey  # noqa: E402

VERSIONS = {"v1": V1, "v2": V2}


def hospital_keys() -> OpeningKeys:
    """A hospital holding both kinds of key; it registers both (the v2 drain seals to
    its X-Wing key)."""
    return OpeningKeys(x25519=X25519PrivateKey.generate(), xwing=XWingPrivateKey.generate())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--recipients", type=int, default=5)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--envelope", choices=sorted(VERSIONS), default="v2")
    ap.add_argument("--postgres", action="store_true", help="hub on a fresh PostgreSQL database")
    ap.add_argument(
        "--fake-hub",
        action="store_true",
        help="the in-memory test hub instead (measures the device side's ceiling)",
    )
    args = ap.parse_args()
    if args.fake_hub:
        run_fake(args)
    elif args.postgres:
        from tests.components import fresh_postgres_database

        with fresh_postgres_database() as url:
            run(args, url, "PostgreSQL")
    else:
        run(args, None, "SQLite")


def run(args: argparse.Namespace, db_url: str | None, db_kind: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    db = db_url or f"sqlite:///{tmp / 'hub.db'}"
    kyukyu = [sys.executable, "-m", "kyukyu.cli"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run(
        [*kyukyu, "hub", "init", "--db", db, "--out", str(tmp / "op.json")],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    hub = subprocess.Popen(
        [*kyukyu, "hub", "serve", "--db", db, "--port", str(port), "--env", "test"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        op_info = json.loads((tmp / "op.json").read_text())
        op = SignedHttp(
            url,
            key=Ed25519PrivateKey.from_private_bytes(b64d(op_info["private_key"])),
            key_id=op_info["key_id"],
        )
        hospitals: dict[str, OpeningKeys] = {}
        for i in range(args.recipients):
            hk = hospital_keys()
            assert hk.x25519 is not None
            assert hk.xwing is not None
            hid = register_hospital(
                op,
                f"bench hospital {i}",
                35.0,
                139.0 + i / 100,
                hpke_public_key=hk.x25519.public_key(),
                signing_public_key=Ed25519PrivateKey.generate().public_key(),
                xwing_public_key=hk.xwing.public_key(),
            )
            hospitals[hid] = hk
        device_id, device_key = enroll_device(op, url, "b", "bench ambulance")
        client = PlatformClient(
            url, key=device_key, device_id=device_id, timeout=httpx.Timeout(30.0)
        )
        result = measure(args, tmp, client, device_id, device_key, hospitals)
        result["hub"] = f"kyukyu hub serve ({db_kind}, separate process, loopback)"
        print(json.dumps(result))
        op.close()
    finally:
        hub.terminate()
        hub.wait(10)


def measure(
    args: argparse.Namespace,
    tmp: Path,
    client: PlatformClient,
    device_id: str,
    device_key: Ed25519PrivateKey,
    hospitals: dict[str, OpeningKeys],
) -> dict[str, object]:
    """Seal (v1 and v2) and queue the backlog (network down), time opening, then drain."""
    pubs = {
        hid: SealingKeys(
            x25519=k.x25519.public_key() if k.x25519 else None,
            xwing=k.xwing.public_key() if k.xwing else None,
        )
        for hid, k in hospitals.items()
    }
    drained = VERSIONS[args.envelope]
    outbox = Outbox(tmp / "device" / "outbox.db")
    seal_times: dict[int, list[float]] = {V1: [], V2: []}
    sealed_all: dict[int, list[bytes]] = {V1: [], V2: []}
    t_queue = time.perf_counter()
    for i in range(args.cases):
        payload = os.urandom(args.size)
        for version in (V1, V2):
            t0 = time.perf_counter()
            sealed = seal_case(
                payload,
                case_id=f"bench-{i:05d}",
                device_id=device_id,
                device_key=device_key,
                recipients=pubs,
                version=version,
            )
            seal_times[version].append(time.perf_counter() - t0)
            sealed_all[version].append(sealed)
        outbox.enqueue(sealed_all[drained][-1])
    queue_s = time.perf_counter() - t_queue

    hid, hkey = next(iter(hospitals.items()))
    device_pub = device_key.public_key()
    open_times: dict[int, list[float]] = {V1: [], V2: []}
    for version in (V1, V2):
        for sealed in sealed_all[version]:
            t0 = time.perf_counter()
            open_case(
                sealed, hospital_id=hid, hospital_key=hkey, device_key_for=lambda _d: device_pub
            )
            open_times[version].append(time.perf_counter() - t0)

    # The network comes back: drain the backlog.
    sender = Sender(outbox, client, concurrency=args.concurrency)
    t0 = time.perf_counter()
    report = sender.drain(timeout=600)
    drain_s = time.perf_counter() - t0
    sender.close()
    client.close()
    outbox.close()

    def p95(xs: list[float]) -> float:
        return round(sorted(xs)[int(len(xs) * 0.95)] * 1000, 3)

    def ms(xs: list[float]) -> float:
        return round(statistics.median(xs) * 1000, 3)

    versions = {
        name: {
            "seal_ms_median": ms(seal_times[v]),
            "seal_ms_p95": p95(seal_times[v]),
            "open_ms_median": ms(open_times[v]),
            "open_ms_p95": p95(open_times[v]),
            "envelope_bytes": len(sealed_all[v][0]),
        }
        for name, v in VERSIONS.items()
    }
    return {
        "benchmark": "sync_drain",
        "envelope": args.envelope,
        "cases": args.cases,
        "recipients": args.recipients,
        "payload_bytes": args.size,
        "envelope_bytes": len(sealed_all[drained][0]),
        "concurrency": args.concurrency,
        "drain_seconds": round(drain_s, 3),
        "cases_per_second": round(report.delivered / drain_s, 1),
        "delivered": report.delivered,
        "retries": report.failures,
        "outbox_left": report.remaining,
        "seal_both_and_queue_seconds": round(queue_s, 3),
        "seal_ms_median": ms(seal_times[drained]),
        "seal_ms_p95": p95(seal_times[drained]),
        "open_ms_median": ms(open_times[drained]),
        "open_ms_p95": p95(open_times[drained]),
        "versions": versions,
        "targets": {"cases_per_second": 200, "seal_ms": 2.0, "open_ms": 1.0},
    }


def run_fake(args: argparse.Namespace) -> None:
    """Same measurement against tests/sync/fakehub.py (in-memory, its own process)."""
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    device_key = Ed25519PrivateKey.generate()
    hospitals = {f"h{i}": hospital_keys() for i in range(args.recipients)}
    keys = {"device:dev-1": public_key_to_b64(device_key.public_key())}
    (tmp / "keys.json").write_text(json.dumps(keys))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    hub = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.fakehub", str(port), str(tmp / "keys.json")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/v1/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        client = PlatformClient(url, key=device_key, device_id="dev-1")
        result = measure(args, tmp, client, "dev-1", device_key, hospitals)
        result["hub"] = "tests/sync/fakehub.py (in-memory, separate process, loopback)"
        print(json.dumps(result))
    finally:
        hub.terminate()
        hub.wait(10)


if __name__ == "__main__":
    main()
