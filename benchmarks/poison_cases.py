"""Poison cases benchmark: 1,000 refused cases at random among 1,000 good ones.

A real platform (uvicorn, SQLite) and the real receiving service of one hospital
(its store on SQLite, and on PostgreSQL with ``--postgres``). One enrolled device
seals and posts every case: the poison ones are valid envelopes whose payload is
``[]``, not JSON, a JSON string or number, a resource that is not a Bundle, a
Bundle that is not a document, nesting 5,000 deep, text that is not Unicode.
Measured from the first post to the last case handled; then checked: every good
case stored, every poison case in ``rejections`` with its code, the stream alive.

Prints exactly one JSON line. Usage:
``.venv/bin/python benchmarks/poison_cases.py [--cases 1000] [--postgres]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.components import fresh_postgres_database  # noqa: E402
from tests.hospital._world import platform, wait_for  # noqa: E402
from tests.hospital.test_poison import POISON, Poster, receiving  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000, help="poison cases (as many good)")
    parser.add_argument("--postgres", action="store_true", help="the hospital store on PostgreSQL")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        tmp_path = Path(tmp)
        p = stack.enter_context(platform(tmp_path))
        url = stack.enter_context(fresh_postgres_database()) if args.postgres else None
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        device = p.new_device()
        poster = Poster(device, site)
        rt = stack.enter_context(receiving(site, **({"db_url": url} if url else {})))
        kinds = ["poison"] * args.cases + ["good"] * args.cases
        rng.shuffle(kinds)
        names = sorted(POISON)
        good: set[str] = set()
        poison: dict[str, str] = {}
        t0 = time.perf_counter()
        for kind in kinds:
            if kind == "good":
                good.add(poster.good())
            else:
                payload, code = POISON[rng.choice(names)]
                poison[poster.send(payload)] = code
        posted = time.perf_counter() - t0
        wait_for(
            lambda: (
                len(rt.store.rejections()) + len(rt.store.cases(limit=10 * len(kinds)))
                >= len(kinds)
            ),
            timeout=600,
            what="every case handled",
        )
        seconds = time.perf_counter() - t0
        stored = {r.case_id for r in rt.store.cases(limit=10 * len(kinds))}
        refused = {r.case_id: r.code for r in rt.store.rejections()}
        print(
            json.dumps(
                {
                    "benchmark": "poison_cases",
                    "store": "postgresql" if args.postgres else "sqlite",
                    "good": len(good),
                    "poison": len(poison),
                    "seconds": round(seconds, 2),
                    "posting_seconds": round(posted, 2),
                    "cases_per_second": round(len(kinds) / seconds, 1),
                    "all_good_stored": stored == good,
                    "all_poison_quarantined": refused == poison,
                    "stream_alive": rt.service.running,
                }
            )
        )


if __name__ == "__main__":
    main()
