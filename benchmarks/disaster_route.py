"""The disaster route (docs/disaster.md): how soon cases reach a hospital directly once the
platform is cut off, and how many per second go that way to one hospital.

Real processes: the platform (``kyukyu hub serve`` on SQLite), one hospital service with
its direct endpoint (``kyukyu hospital serve --direct-port``, HTTPS), one device
(``sync.Sender`` with ``sync.direct.DirectRoute``, a thread of this process). A case waits
in the outbox; the platform is killed with kill -9; measured on ``time.monotonic()``:

- ``first_direct_s``: from the kill to the first direct delivery (target: the device's
  ``--unreachable-seconds`` threshold, 60 s by default, plus one send; the device first
  has to notice the platform is out, which costs its request timeout, 2 s here);
- ``cases_per_s``: then ``--cases`` cases queued at once, until the hospital has them all
  by the direct route (sealed, signed, posted one by one, opened and stored).

Prints one JSON line.

    .venv/bin/python benchmarks/disaster_route.py [--unreachable-seconds 60] [--cases 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kyukyu.testing import DisasterWorld, wait_for  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--unreachable-seconds", type=float, default=60.0)
    p.add_argument("--cases", type=int, default=200)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kyukyu-disaster-") as tmp:
        world = DisasterWorld(Path(tmp) / "world")
        try:
            world.start(hospitals=1, devices=1, unreachable_seconds=args.unreachable_seconds)
            (hospital,) = world.hospitals
            (device,) = world.devices
            killed = time.monotonic()
            world.kill_hub()
            first = device.send([hospital.id])
            if not wait_for(
                lambda: hospital.id in device.direct_done(first),
                args.unreachable_seconds + 120,
                step=0.01,
            ):
                raise SystemExit("no direct delivery")
            first_direct = time.monotonic() - killed
            start = time.monotonic()
            ids = [device.send([hospital.id]) for _ in range(args.cases)]
            if not wait_for(
                lambda: all(hospital.id in device.direct_done(i) for i in ids),
                600,
                step=0.05,
            ):
                raise SystemExit("not every case reached the hospital directly")
            seconds = time.monotonic() - start
            stored = sum(len(hospital.rows(i)) for i in ids)
        finally:
            world.close()
    print(
        json.dumps(
            {
                "benchmark": "disaster_route",
                "unreachable_seconds": args.unreachable_seconds,
                "first_direct_s": round(first_direct, 2),
                "first_direct_over_threshold_s": round(first_direct - args.unreachable_seconds, 2),
                "cases": args.cases,
                "stored_at_hospital": stored,
                "direct_seconds": round(seconds, 2),
                "cases_per_s": round(args.cases / seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
