"""Summary look-up on a 100,000-patient synthetic source: seeding time, p50/p99 of summary().

Runs on a temporary SQLite file and, when reachable, on a fresh database of the
PostgreSQL at ``KYUKYU_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Prints one JSON line. Target (issue 3): p99 <= 50 ms.

    .venv/bin/python benchmarks/summary_lookup.py [--patients 100000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_server.medical import open_source, seed

PG_ADMIN_URL = os.environ.get("KYUKYU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TARGET_P99_MS = 50.0


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def run(url: str, patients: int, lookups: int) -> dict[str, Any]:
    report = seed(url, patients=patients, rng_seed=0)
    source = open_source(url)
    keys = source.patient_keys()
    rng = random.Random(1)
    now = datetime.now(UTC)
    out: dict[str, Any] = {"seed_s": round(report.seconds, 2)}
    for label, full in (("", False), ("full_", True)):
        source.summary(keys[0], now=now, full=full)  # warm the pool and caches
        times: list[float] = []
        sizes: list[int] = []
        for _ in range(lookups):
            key = rng.choice(keys)
            t0 = time.perf_counter()
            bundle = source.summary(key, now=now, full=full)
            times.append((time.perf_counter() - t0) * 1000)
            assert bundle is not None
            sizes.append(len(bundle["entry"]))
        out[f"{label}p50_ms"] = _pct(times, 0.50)
        out[f"{label}p99_ms"] = _pct(times, 0.99)
        out[f"{label}mean_entries"] = round(statistics.mean(sizes), 1)
    source.engine.dispose()
    return out


@contextmanager
def _postgres() -> Iterator[str | None]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception:
        yield None
        return
    name = f"kyukyu_bench_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "summary_lookup",
        "patients": args.patients,
        "lookups": args.lookups,
        "target_p99_ms": TARGET_P99_MS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = run(f"sqlite:///{Path(tmp) / 'med.db'}", args.patients, args.lookups)
    with _postgres() as pg_url:
        result["postgresql"] = run(pg_url, args.patients, args.lookups) if pg_url else None
    measured = [r for r in (result["sqlite"], result["postgresql"]) if r]
    result["ok"] = all(r["p99_ms"] <= TARGET_P99_MS for r in measured)
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
