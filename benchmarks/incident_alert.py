"""多数傷病者 alert: one region of --hospitals hospitals, each holding its event stream
(``GET /v1/hospitals/me/events``) on PostgreSQL (a real ``kyukyu hub serve`` with
--pg-workers workers); a device declares --incidents incidents one after the other (``POST
/v1/incidents``, the next once the previous alert reached every hospital, or after
--timeout); each declaration must reach every hospital's stream (its numbered ``event:
incident``, stored and then pushed).

Times on ``time.monotonic()`` in this one process: from right before the POST is sent to
the alert's bytes being read from each hospital's socket (all streams read by protocol
callbacks in one event loop). A warm-up incident, not measured, first reaches every
stream. Hospitals and the device are inserted straight into the database
(``availability_push.populate``). Prints one JSON line: deliveries, p50, p99, max.

    .venv/bin/python benchmarks/incident_alert.py [--hospitals 200] [--incidents 20]
        [--pg-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _streams import EventReader, open_event_stream, region_hub  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from hub_load import Signer, _pct, _raise_nofile  # noqa: E402

from sync.signing import sign_request  # noqa: E402

INCIDENT = re.compile(rb'"incident_id":"(inc-[0-9a-f]+)"')


async def run(
    url: str, hids: list[str], did: str, key: Ed25519PrivateKey, incidents: int, timeout: float
) -> dict[str, Any]:
    import httpx

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    arrivals: dict[str, list[float]] = {}

    def record(incident: bytes, now: float) -> None:
        arrivals.setdefault(incident.decode(), []).append(now)

    def reader(held: asyncio.Future[bool]) -> EventReader:
        return EventReader(b"incident", INCIDENT, record, held)

    path = "/v1/hospitals/me/events"
    transports = []
    for i in range(0, len(hids), 50):  # a ramp, not a storm
        transports += await asyncio.gather(
            *(
                open_event_stream(host, port, path, Signer(f"hospital:{h}", key), reader)
                for h in hids[i : i + 50]
            )
        )

    async def declare(client: httpx.AsyncClient, n: int) -> tuple[str, float]:
        body = json.dumps(
            {"place": f"ベンチ地点{n}", "kind": "交通事故", "estimated_count": 20}
        ).encode()
        path = "/v1/incidents"
        headers = {
            "content-type": "application/json",
            **sign_request(key, f"device:{did}", "POST", path, body),
        }
        sent = time.monotonic()
        r = await client.post(path, content=body, headers=headers)
        if r.status_code != 201:
            raise SystemExit(f"declare: {r.status_code} {r.text}")
        return str(r.json()["incident_id"]), sent

    async def reach_all(incident: str, deadline: float) -> None:
        while len(arrivals.get(incident, ())) < len(hids) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    latencies: list[float] = []
    reached = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        warm, sent = await declare(client, incidents)  # warm-up, not measured
        await reach_all(warm, sent + 60)
        for n in range(incidents):
            incident, sent = await declare(client, n)
            await reach_all(incident, sent + timeout)
            got = arrivals.get(incident, [])
            reached += len(got)
            latencies.extend(t - sent for t in got)
    for t in transports:
        t.close()
    return {
        "streams_held": len(transports),
        "incidents": incidents,
        "deliveries": reached,
        "deliveries_expected": incidents * len(hids),
        "reached_all": reached == incidents * len(hids),
        "p50_ms": _pct(latencies, 0.5),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": None if not latencies else round(max(latencies) * 1000, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hospitals", type=int, default=200)
    p.add_argument("--incidents", type=int, default=20)
    p.add_argument("--pg-workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per incident")
    args = p.parse_args()
    _raise_nofile()

    key = Ed25519PrivateKey.generate()
    result: dict[str, Any] = {
        "benchmark": "incident_alert",
        "database": "postgresql",
        "hospitals": args.hospitals,
        "hub_workers": args.pg_workers,
        "target_p99_ms": 1000,
        "note": "the streams' reader, the hub and PostgreSQL share this 2-core machine",
    }
    with region_hub(args.hospitals, 1, key, args.pg_workers) as (url, _proc, hids, dids):
        result.update(asyncio.run(run(url, hids, dids[0], key, args.incidents, args.timeout)))
    result["p99_within_target"] = result.get("p99_ms") is not None and result["p99_ms"] <= 1000
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
