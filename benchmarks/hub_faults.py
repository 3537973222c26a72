"""Faults on real processes: does the platform lose, repeat or refuse anything?

A PostgreSQL cluster of its own (``initdb`` / ``pg_ctl`` on a free port, as the
``postgres`` user; never the shared one on 5432; its data on a small tmpfs when the
``disk_full`` fault runs: we are root, and it is unmounted at the end), ``kyukyu hub serve
--workers 2``, two hospitals' receivers and four devices posting sealed cases through their
outbox (the product's own ``sync`` code). Each fault in turn, with cases posted before and
during it:

- ``worker_kill``: kill -9 of one hub worker (uvicorn starts another);
- ``db_restart``: ``pg_ctl restart -m fast``;
- ``db_down``: PostgreSQL stopped for 20 s (``--quick``: 5 s);
- ``disk_full``: the database's tmpfs filled for 10 s (``--quick``: 5 s), then freed;
- ``receiver_pause``: one hospital stops reading for 30 s (``--quick``: 10 s).

Prints one JSON line: per fault, cases posted, 201s, delivered per recipient, duplicates,
lost, every status code the devices and receivers saw (and transport errors by type), and
the recovery seconds: from the end of the fault until every case queued on the devices was
accepted. Targets: 0 lost, 0 duplicates, no 500, recovery within 10 s.

    .venv/bin/python benchmarks/hub_faults.py [--quick] [--faults db_down,worker_kill]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kyukyu.testing import (  # noqa: E402
    FleetDevice,
    FleetReceiver,
    HubProcess,
    PgCluster,
    make_fleet,
    wait_for,
)

FAULTS = ("worker_kill", "db_restart", "db_down", "disk_full", "receiver_pause")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="shorter faults and fewer cases")
    ap.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated, in order (default: all: {','.join(FAULTS)})",
    )
    ap.add_argument("--rate", type=float, default=2.0, help="cases/s per device (4 devices)")
    ap.add_argument("--settle", type=float, default=90.0, help="seconds to wait for delivery")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        ap.error(f"unknown fault(s) {unknown}; choose from {', '.join(FAULTS)}")
    args.fault_list = faults
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """The run's own PostgreSQL (``kyukyu.testing.PgCluster``), its data on a tmpfs of
    ``tmpfs_mb`` when given (the full-disk fault fills it)."""

    def __init__(self, base: Path, *, tmpfs_mb: int | None) -> None:
        base.chmod(0o755)  # the cluster's own user must reach its directory inside
        self.mount = base / "pgmnt"
        self.mount.mkdir()
        self.mounted = False
        if tmpfs_mb:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mb}m", "tmpfs", str(self.mount)],
                check=True,
            )
            self.mounted = True
        self.pg = PgCluster(self.mount / "pg").init()
        self.pg.start()
        self.pg.create_database("hub")
        self.url = self.pg.url("hub")

    def start(self) -> None:
        self.pg.start()

    def stop(self) -> None:
        self.pg.stop()

    def restart(self) -> None:
        self.pg.restart()

    def running(self) -> bool:
        return self.pg.running()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.pg.running():
                self.pg.stop()
        if self.mounted:
            subprocess.run(["umount", str(self.mount)], check=False)


@contextlib.contextmanager
def fleet(args: argparse.Namespace, tmp: Path) -> Iterator[dict[str, Any]]:
    cluster = Cluster(tmp, tmpfs_mb=256 if "disk_full" in args.fault_list else None)
    hub = None
    receivers: list[FleetReceiver] = []
    devices: list[FleetDevice] = []
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        init = [sys.executable, "-m", "kyukyu", "hub", "init", "--db", cluster.url]
        subprocess.run([*init, "--out", str(tmp / "op.json")], check=True, env=env, cwd=ROOT)
        port = free_port()
        hub = HubProcess(
            [
                "--db", cluster.url, "--port", str(port), "--env", "test", "--workers", "2",
                "--key", str(tmp / "hub.key"), "--no-migrate", "--pool-size", "4",
            ],
            tmp / "hub.log",
            env={"KYUKYU_HUB_CONFIG": str(tmp / "absent.env")},
        ).start()  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        from kyukyu.testing import wait_until_serving

        wait_until_serving(url, hub.proc, why=hub.tail)
        hospitals, enrolled = make_fleet(url, tmp / "op.json", hospitals=2, devices=4)
        receivers = [FleetReceiver(url, h, enrolled, tmp / "rx").start() for h in hospitals]
        devices = [FleetDevice(url, d, hospitals, tmp / "dev").start() for d in enrolled]
        yield {"cluster": cluster, "hub": hub, "receivers": receivers, "devices": devices}
    finally:
        for d in devices:
            d.stop()
        for r in receivers:
            r.stop()
        if hub is not None:
            hub.stop()
        cluster.close()


def _workers(hub: HubProcess) -> list[int]:
    assert hub.proc is not None
    out = subprocess.run(["pgrep", "-P", str(hub.proc.pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _fill(mount: Path) -> Path:
    filler = mount / "filler"
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True, check=False
    )
    return filler


def run_fault(name: str, world: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    cluster: Cluster = world["cluster"]
    hub: HubProcess = world["hub"]
    receivers: list[FleetReceiver] = world["receivers"]
    devices: list[FleetDevice] = world["devices"]
    hold = {"db_down": 20.0, "disk_full": 10.0, "receiver_pause": 30.0}.get(name, 0.0)
    if args.quick:
        hold = {"db_down": 5.0, "disk_full": 5.0, "receiver_pause": 10.0}.get(name, 0.0)
    before_rx = [Counter(r.received()) for r in receivers]
    before_status = sum((x.transport.snapshot() for x in [*devices, *receivers]), Counter[str]())
    posted: list[str] = []
    stop = threading.Event()

    def post() -> None:  # every device, at args.rate cases/s, until stopped
        while not stop.is_set():
            for d in devices:
                posted.extend(d.queue(1))
            stop.wait(1.0 / args.rate)

    poster = threading.Thread(target=post, daemon=True)
    poster.start()
    time.sleep(2.0 if args.quick else 5.0)
    undo: Callable[[], None] = lambda: None  # noqa: E731
    if name == "worker_kill":
        workers = _workers(hub)
        os.kill(workers[0], signal.SIGKILL)
    elif name == "db_restart":
        cluster.restart()
    elif name == "db_down":
        cluster.stop()
        undo = cluster.start
    elif name == "disk_full":
        filler = _fill(cluster.mount)

        def undo() -> None:
            filler.unlink(missing_ok=True)
            if not cluster.running():  # PostgreSQL may have stopped on a failed WAL write
                cluster.start()

    elif name == "receiver_pause":
        receivers[0].pause()
        undo = receivers[0].resume
    time.sleep(hold)
    undo()
    # Nothing more is queued: the recovery is how long the cases queued up to now take.
    stop.set()
    poster.join()
    ended = time.monotonic()
    accepted = wait_for(lambda: all(d.pending() == 0 for d in devices), args.settle, 0.05)
    recovery = time.monotonic() - ended if accepted else None
    want = set(posted)
    wait_for(lambda: all(want <= set(r.received()) for r in receivers), args.settle, 0.2)
    after_status = sum((x.transport.snapshot() for x in [*devices, *receivers]), Counter[str]())
    statuses = {k: v for k, v in (after_status - before_status).items() if v}
    delivered, duplicates, lost = {}, 0, 0
    for r, before in zip(receivers, before_rx, strict=True):
        got = Counter(r.received()) - before
        mine = {c: n for c, n in got.items() if c in want}
        delivered[r.hospital.id] = len(mine)
        duplicates += sum(n - 1 for n in mine.values())
        lost = max(lost, len(want - set(mine)))
    return {
        "fault": name,
        "held_seconds": hold,
        "posted": len(posted),
        "201": statuses.get("201", 0),
        "delivered": delivered,
        "duplicates": duplicates,
        "lost": lost,
        "statuses": dict(sorted(statuses.items())),
        "recovery_seconds": None if recovery is None else round(recovery, 2),
        "queued_left": sum(d.pending() for d in devices),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hub-faults-"))
    results = []
    started = time.monotonic()
    with fleet(args, tmp) as world:
        for name in args.fault_list:
            results.append(run_fault(name, world, args))
    ok = all(
        r["lost"] == 0
        and r["duplicates"] == 0
        and "500" not in r["statuses"]
        and r["recovery_seconds"] is not None
        and r["recovery_seconds"] <= 10
        for r in results
    )
    print(
        json.dumps(
            {
                "benchmark": "hub_faults",
                "quick": args.quick,
                "hub": "kyukyu hub serve --workers 2, PostgreSQL cluster of its own",
                "devices": 4,
                "receivers": 2,
                "rate_per_device": args.rate,
                "faults": results,
                "targets": {"lost": 0, "duplicates": 0, "no_500": True, "recovery_seconds": 10},
                "targets_met": ok,
                "seconds": round(time.monotonic() - started, 1),
                "workdir": str(tmp) if args.keep else None,
            },
            ensure_ascii=False,
        )
    )
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
