"""Edge flow benchmark: tap to summary on screen, cold start, memory over 20 cases.

- tap -> summary: a virtual card at 212 kbit/s arrives on the vpcd reader of the real
  pcscd; the edge app (headless Textual, the real flow, a real hub under uvicorn in a
  child process) reads and checks it, the two touches of a conscious patient (consent,
  face check) are made as soon as their screens are up, and the clock stops when the
  summary screen has been rendered. No human in the loop.
- cold start: ``kyukyu edge`` started in tmux until the standby screen shows (capture-pane).
- memory: the device process's RSS after each of 20 consecutive cases (each one read,
  summary, vitals, sealed and sent to a hospital, done): peak, and growth from case 2
  to case 20.

Prints exactly one JSON line. Usage: ``.venv/bin/python benchmarks/edge_flow.py [--cases N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PCSCD_LOCK = Path("/tmp/kyukyu-pcscd.lock")  # shared with the test fixtures
LINK_KBPS = 212


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve_hub(workdir: Path) -> None:
    """Child mode: the platform (hub, synthetic patients, hospitals); prints its world."""
    from cryptography.hazmat.primitives import serialization

    from tests.edge._world import running_world, write_device_config

    with running_world(workdir / "world", patients=50) as w:
        config = write_device_config(w, workdir / "device")
        hospitals = [
            {
                "id": h.id,
                "name": h.name,
                "key": h.signing.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
            }
            for h in w.hospitals
        ]
        print(
            json.dumps(
                {
                    "url": w.url,
                    "config": str(config),
                    "card": str(w.patient_card),
                    "ca_dir": str(w.ca_dir),
                    "hospitals": hospitals,
                }
            ),
            flush=True,
        )
        sys.stdin.read()  # until the parent closes it


async def run_cases(world: dict[str, Any], cases: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from edge.card_sim import CardImage, Quirks, VirtualCard, VpcdFrontEnd
    from edge.flow import Stage, open_flow
    from edge.settings import load_device_settings
    from edge.ui import EdgeApp
    from kyukyu import testing
    from sync.receiver import HospitalClient

    settings = load_device_settings(
        Path(world["config"]), reader_name="Virtual PCD 00 00", idle_timeout_s=3600
    )
    flow = open_flow(settings)
    flow.start()
    app = EdgeApp(flow, idle_timeout_s=3600)
    image = CardImage.load(Path(world["card"]))
    card = VirtualCard(image, quirks=Quirks(link_kbps=LINK_KBPS))
    testing.ensure_pcscd()
    front = VpcdFrontEnd(card, testing.VPCD_HOST, testing.VPCD_PORTS[0])
    nearest = world["hospitals"][2]
    hospital = HospitalClient(
        world["url"],
        hospital_id=nearest["id"],
        key=load_pem_private_key(nearest["key"].encode(), password=None),  # type: ignore[arg-type]
    )
    taps: list[float] = []
    rss: list[float] = []
    marks: list[tuple[float, str]] = []
    detected: list[float] = []  # when the flow saw the card (pcscd's presence poll done)

    def watch(v: Any) -> None:
        now = time.perf_counter()
        if v.stage is Stage.READING and not v.progress:
            detected.append(now)
        if os.environ.get("EDGE_BENCH_TRACE"):
            marks.append((now, v.stage.value + str(v.progress)))

    flow.subscribe(watch)
    from_detect: list[float] = []

    async with app.run_test(size=(100, 30)) as pilot:

        async def until(stage: Stage, timeout: float = 30) -> None:
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                s = app._flow_screen
                if (
                    s is not None
                    and s.STAGE is stage
                    and s.is_current
                    and not flow.view().busy
                    and s.query("#status")  # composed
                ):
                    await pilot.pause()  # laid out and drawn: a finger can aim
                    return
                await asyncio.sleep(0.002)
            raise RuntimeError(f"stage {stage} not reached ({flow.view().stage})")

        await until(Stage.STANDBY)
        for i in range(cases):
            t0 = time.perf_counter()
            if i == 0:
                front.start()
            else:
                front.insert()
            await until(Stage.CONSENT)
            await pilot.click("#primary")  # 口頭同意あり
            await until(Stage.IDENTITY)
            await pilot.click("#primary")  # 顔写真で本人確認済み
            await until(Stage.SUMMARY)
            await pilot.pause()  # rendered
            t1 = time.perf_counter()
            taps.append(t1 - t0)
            from_detect.append(t1 - detected[-1])
            if marks:
                print([(round(t - t0, 3), m) for t, m in marks if t >= t0], file=sys.stderr)
            if flow.view().summary_status != "found":
                raise RuntimeError(f"summary {flow.view().summary_status}")
            # The rest of the case, as the crew would: vitals, send, answer, done.
            await pilot.click("#primary")
            await until(Stage.VITALS)
            await pilot.click("#cc-1")
            await pilot.pause(0.1)
            await pilot.click("#primary")
            await until(Stage.HOSPITALS)
            await pilot.click("#h-0")
            await pilot.click("#primary")
            deadline = time.monotonic() + 20
            while not flow.sent_case_ids() or flow.view().waiting_sealed:
                if time.monotonic() > deadline:
                    raise RuntimeError("case not delivered")
                await asyncio.sleep(0.01)
            (case_id,) = flow.sent_case_ids()
            await asyncio.to_thread(hospital.answer, case_id, "accept")
            deadline = time.monotonic() + 20
            while flow.view().hospitals[0].answer != "accept":
                if time.monotonic() > deadline:
                    raise RuntimeError("no answer")
                await asyncio.sleep(0.01)
            await pilot.pause(0.1)
            await pilot.click("#dest-0")
            await until(Stage.CONFIRMED)
            await pilot.click("#primary")  # 事案終了: forget
            await until(Stage.STANDBY)
            front.remove()  # the card is handed back
            await asyncio.sleep(0.3)
            rss.append(rss_mb())
            if os.environ.get("EDGE_BENCH_TRACEMALLOC"):
                import tracemalloc

                if i == 2:
                    tracemalloc.start(8)
                    snap0 = tracemalloc.take_snapshot()
                elif i == cases - 1 and tracemalloc.is_tracing():
                    top = tracemalloc.take_snapshot().compare_to(snap0, "traceback")[:8]
                    for stat in top:
                        print(stat, file=sys.stderr)
                        for line in stat.traceback.format()[-6:]:
                            print("   ", line, file=sys.stderr)
    front.stop()
    hospital.close()
    flow.close()
    return {"taps": taps, "from_detect": from_detect, "rss": rss}


def cold_start(config: str, runs: int = 3) -> list[float]:
    from tests.ui._terminal import Tmux

    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            term = Tmux(Path(d))
            env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ["PATH"]}
            t0 = time.perf_counter()
            term.start([sys.executable, "-m", "kyukyu", "edge", "--config", config], env)
            try:
                while "カードをタッチしてください" not in term.screen():
                    if time.perf_counter() - t0 > 30:
                        raise RuntimeError("no standby screen")
                    time.sleep(0.02)
                out.append(time.perf_counter() - t0)
            finally:
                term.kill()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--serve-hub", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_hub:
        serve_hub(args.serve_hub)
        return 0
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-bench-")))
        hub = subprocess.Popen(
            [sys.executable, __file__, "--serve-hub", str(work)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert hub.stdin is not None
        assert hub.stdout is not None
        stack.callback(hub.wait, 20)
        stack.callback(hub.stdin.close)
        world = json.loads(hub.stdout.readline())
        PCSCD_LOCK.touch(exist_ok=True)
        lock = stack.enter_context(PCSCD_LOCK.open("w"))
        fcntl.flock(lock, fcntl.LOCK_EX)
        starts = cold_start(world["config"])
        rss_before = rss_mb()
        result = asyncio.run(run_cases(world, args.cases))
    taps = sorted(result["taps"])
    rss = result["rss"]
    p95 = taps[min(len(taps) - 1, round(0.95 * (len(taps) - 1)))]
    out = {
        "benchmark": "edge_flow",
        "link_kbps": LINK_KBPS,
        "cases": args.cases,
        "tap_to_summary_s": {
            "median": round(statistics.median(taps), 3),
            "p95": round(p95, 3),
            "max": round(taps[-1], 3),
        },
        # Without pcscd's presence poll of the virtual reader (a USB reader signals at once).
        "detected_to_summary_s": {
            "median": round(statistics.median(result["from_detect"]), 3),
            "max": round(max(result["from_detect"]), 3),
        },
        "cold_start_s": {"median": round(statistics.median(starts), 3), "runs": len(starts)},
        "rss_mb": {
            "before_cases": round(rss_before, 1),
            "peak": round(peak_rss_mb(), 1),
            "after_case_2": round(rss[1] if len(rss) > 1 else rss[0], 1),
            "after_last": round(rss[-1], 1),
            "growth_2_to_last": round(rss[-1] - (rss[1] if len(rss) > 1 else rss[0]), 1),
        },
        "targets": {"tap_to_summary_median_s": 1.0, "cold_start_s": 2.0, "peak_rss_mb": 150},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
