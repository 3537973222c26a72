"""Edge flow benchmark: tap to summary on screen, cold start, memory over 20 cases.

- tap -> summary: a virtual card at 212 kbit/s arrives on the vpcd reader of the real
  pcscd; the edge app (headless Textual, the real flow, a real hub under uvicorn in a
  child process) reads and checks it, the two touches of a conscious patient (consent,
  face check) are made as soon as their screens are up, and the clock stops when the
  summary screen has been rendered. No human in the loop. The clock starts as the card
  lands on the reader: the last case's card has been away long enough (the vpcd front
  end keeps a card out ``MIN_ABSENT_S`` so pcscd sees it leave) that it connects at once.
- cold start: ``kyukyu edge`` started in tmux until the standby screen shows (capture-pane),
  as on a device: pcscd running, our packages' bytecode compiled (``compile_bytecode``,
  as pip does on install; a caller's ``PYTHONDONTWRITEBYTECODE`` would otherwise make
  every start compile them from source).
- memory: the device process's RSS after each of 20 consecutive cases (each one read,
  summary, vitals, sealed and sent to a hospital, done): peak, and growth from case 2
  to case 20.
- ``pi_class``: tap -> summary and cold start again with the edge device's own process
  (the app and the flow) limited to 25 % of one core by a cgroup (v1 ``cpu.cfs_quota_us``
  or v2 ``cpu.max``, whichever the machine has; removed afterwards), a Raspberry
  Pi-class CPU budget. The platform, pcscd and the virtual card stay outside it.

The device side always runs in its own process (``--device``), at full speed or in the
cgroup; this process holds the virtual card and the answering hospital and does what
the device asks over a socket pair (insert, remove, accept).

Prints exactly one JSON line. Usage:
``.venv/bin/python benchmarks/edge_flow.py [--cases N] [--pi-cases M]`` (as root:
the cgroup). ``EDGE_BENCH_TRACE=1`` prints each tap's flow stages with their times to
stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import importlib.util
import json
import os
import random
import shlex
import signal
import socket
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
POLL_S = 0.4  # pcscd asks a reader without card events (vpcd) for its card this often


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


class CardSide:
    """The device child's link to the parent, which holds the card and the hospital.

    One JSON line per request over a socket pair; the parent answers when it is done.
    """

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._file = self._sock.makefile("rw", encoding="utf-8")

    def ask(self, **request: Any) -> None:
        self._file.write(json.dumps(request) + "\n")
        self._file.flush()
        reply = json.loads(self._file.readline() or "{}")
        if not reply.get("ok"):
            raise RuntimeError(f"{request['do']}: {reply.get('error', 'no reply')}")

    def close(self) -> None:
        self._file.close()
        self._sock.close()


async def run_cases(world: dict[str, Any], cases: int, side: CardSide) -> dict[str, Any]:
    """The edge device's own process: the app (headless Textual) and the flow."""
    from edge.flow import Stage, open_flow
    from edge.settings import load_device_settings
    from edge.ui import EdgeApp

    settings = load_device_settings(
        Path(world["config"]), reader_name="Virtual PCD 00 00", idle_timeout_s=3600
    )
    flow = open_flow(settings)
    flow.start()
    app = EdgeApp(flow, idle_timeout_s=3600)
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

        async def until(stage: Stage, timeout: float = 60) -> None:
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

        async def tap(selector: str, timeout: float = 60) -> None:
            """A finger on ``selector`` once it is on screen and no intent runs."""
            deadline = time.perf_counter() + timeout
            while not (app.screen.query(selector) and not app.busy):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{selector} not on screen ({flow.view().stage})")
                await asyncio.sleep(0.01)
            await pilot.pause()
            await pilot.click(selector)

        await until(Stage.STANDBY)
        for i in range(cases):
            # The clock starts as the card lands on the reader (the parent connects it
            # to vpcd at once: the last card has been away long enough, see serve_card).
            t0 = time.perf_counter()
            side.ask(do="insert")
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
                marks.clear()
            if flow.view().summary_status != "found":
                raise RuntimeError(f"summary {flow.view().summary_status}")
            # The rest of the case, as the crew would: vitals, send, answer, done.
            await tap("#primary")
            await until(Stage.VITALS)
            await tap("#cc-1")
            deadline = time.monotonic() + 60
            while flow.view().chief_complaint is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no chief complaint")
                await asyncio.sleep(0.01)
            await tap("#primary")
            await until(Stage.HOSPITALS)
            await tap("#h-0")
            while not flow.view().hospitals[0].selected:
                if time.monotonic() > deadline:
                    raise RuntimeError("hospital not selected")
                await asyncio.sleep(0.01)
            await tap("#primary")
            deadline = time.monotonic() + 60
            while not flow.sent_case_ids() or flow.view().waiting_sealed:
                if time.monotonic() > deadline:
                    raise RuntimeError("case not delivered")
                await asyncio.sleep(0.01)
            (case_id,) = flow.sent_case_ids()
            await asyncio.to_thread(side.ask, do="accept", case_id=case_id)
            deadline = time.monotonic() + 60
            while flow.view().hospitals[0].answer != "accept":
                if time.monotonic() > deadline:
                    raise RuntimeError("no answer")
                await asyncio.sleep(0.01)
            await tap("#dest-0")
            await until(Stage.CONFIRMED)
            await tap("#primary")  # 事案終了: forget
            await until(Stage.STANDBY)
            # The card is handed back; the next patient comes later.
            await asyncio.to_thread(side.ask, do="remove")
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
    flow.close()
    return {
        "taps": taps,
        "from_detect": from_detect,
        "rss": rss,
        "peak_rss": peak_rss_mb(),
    }


def device_main(world_file: Path, cases: int, fd: int) -> None:
    """Child mode: the edge device's process; prints its figures as one JSON line."""
    side = CardSide(fd)
    world = json.loads(world_file.read_text())
    before = rss_mb()
    try:
        result = asyncio.run(run_cases(world, cases, side))
    finally:
        side.close()
    result["rss_before"] = before
    print(json.dumps(result), flush=True)


def serve_card(world: dict[str, Any], sock: socket.socket) -> None:
    """Parent side of ``CardSide``: the virtual card on vpcd and the answering hospital."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from edge.card_sim import CardImage, Quirks, VirtualCard, VpcdFrontEnd
    from edge.card_sim.vpcd import MIN_ABSENT_S
    from kyukyu import testing
    from sync.receiver import HospitalClient

    card = VirtualCard(CardImage.load(Path(world["card"])), quirks=Quirks(link_kbps=LINK_KBPS))
    testing.ensure_pcscd()
    front = VpcdFrontEnd(card, testing.VPCD_HOST, testing.VPCD_PORTS[0])
    nearest = world["hospitals"][2]
    hospital = HospitalClient(
        world["url"],
        hospital_id=nearest["id"],
        key=load_pem_private_key(nearest["key"].encode(), password=None),  # type: ignore[arg-type]
    )
    started = False
    gaps = random.Random(19)
    with sock.makefile("rw", encoding="utf-8") as f:
        for line in f:
            request = json.loads(line)
            try:
                if request["do"] == "insert":
                    if started:
                        front.insert()
                    else:
                        front.start()
                        started = True
                elif request["do"] == "remove":
                    front.remove()
                    # Away long enough for the front end to connect the next card the
                    # moment it is inserted (it keeps a card out MIN_ABSENT_S, so pcscd
                    # sees it leave): the next tap's clock starts with a card on the reader.
                    # Plus 0-0.4 s at random (seeded): the taps sample every phase of
                    # pcscd's 0.4 s presence poll, not the one the cases' equal lengths
                    # would lock them into.
                    time.sleep(MIN_ABSENT_S + 0.05 + gaps.uniform(0, POLL_S))
                elif request["do"] == "accept":
                    hospital.answer(request["case_id"], "accept")
                reply: dict[str, Any] = {"ok": True}
            except Exception as exc:  # the child raises it with the request
                reply = {"ok": False, "error": repr(exc)}
            f.write(json.dumps(reply) + "\n")
            f.flush()
    front.stop()
    hospital.close()


def run_device(world: dict[str, Any], world_file: Path, cases: int, cpu: CpuLimit | None) -> Any:
    """The device side in its own process (in ``cpu``'s cgroup when given); the card,
    pcscd and the platform stay outside."""
    parent, child = socket.socketpair()
    command = [sys.executable, __file__, "--device", str(world_file), "--cases", str(cases)]
    proc = subprocess.Popen(
        [*command, "--fd", str(child.fileno())],
        pass_fds=(child.fileno(),),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=None if cpu is None else cpu.join_self,
    )
    child.close()
    assert proc.stdout is not None
    try:
        serve_card(world, parent)
        out = proc.stdout.read()
    finally:
        parent.close()
        if proc.wait(60) != 0:
            raise RuntimeError(f"device process failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


class CpuLimit:
    """A cgroup limiting its processes to ``quota_us`` per ``period_us`` of CPU
    (cgroup v1's cpu controller, or v2's cpu.max); removed on ``close``."""

    V1 = Path("/sys/fs/cgroup/cpu")
    V2 = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))

    def __init__(self, quota_us: int = 25_000, period_us: int = 100_000) -> None:
        name = f"kyukyu-edge-bench-{os.getpid()}"
        self.dir: Path | None = None
        problems = []
        if (self.V1 / "cpu.cfs_quota_us").exists():
            try:
                self._make(self.V1 / name)
                (self.V1 / name / "cpu.cfs_period_us").write_text(str(period_us))
                (self.V1 / name / "cpu.cfs_quota_us").write_text(str(quota_us))
                self.version = "v1"
                return
            except OSError as exc:
                problems.append(f"v1 {self.V1}: {exc}")
                self.close()
        for root in self.V2:
            controllers = root / "cgroup.controllers"
            if not controllers.exists() or "cpu" not in controllers.read_text().split():
                continue
            try:
                subtree = root / "cgroup.subtree_control"
                if "cpu" not in subtree.read_text().split():
                    subtree.write_text("+cpu")
                self._make(root / name)
                (root / name / "cpu.max").write_text(f"{quota_us} {period_us}")
                self.version = "v2"
                return
            except OSError as exc:
                problems.append(f"v2 {root}: {exc}")
                self.close()
        raise SystemExit(
            "edge_flow: pi_class needs a writable cgroup cpu controller (v1 "
            f"{self.V1}/cpu.cfs_quota_us or v2 cpu.max under "
            f"{' or '.join(map(str, self.V2))}); run as root on such a machine. "
            + ("; ".join(problems) or "none found")
        )

    def _make(self, path: Path) -> None:
        path.mkdir()
        self.dir = path

    @property
    def procs(self) -> Path:
        assert self.dir is not None
        return self.dir / "cgroup.procs"

    def join_self(self) -> None:
        """Put the calling process in the group (a child's ``preexec_fn``)."""
        self.procs.write_text(str(os.getpid()))

    def close(self) -> None:
        """Move any process left back to the parent group and remove the group."""
        if self.dir is None or not self.dir.exists():
            return
        parent_procs = self.dir.parent / "cgroup.procs"
        for _ in range(50):
            left = self.procs.read_text().split()
            for pid in left:
                with contextlib.suppress(OSError):
                    parent_procs.write_text(pid)
            try:
                self.dir.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"could not remove the cgroup {self.dir}")


def compile_bytecode() -> None:
    """Our packages' bytecode compiled next to them (``__pycache__``, as ``pip install``
    leaves it on a device): a start must not compile ~80 modules from source (0.1 s of
    CPU, 0.4 s at 25 %), which it does when it runs with ``PYTHONDONTWRITEBYTECODE``."""
    roots = []
    for name in ("edge", "sync", "errbase", "kyukyu"):
        spec = importlib.util.find_spec(name)
        assert spec is not None
        assert spec.submodule_search_locations
        roots += list(spec.submodule_search_locations)
    subprocess.run([sys.executable, "-m", "compileall", "-q", *roots], check=True)


def cold_start(
    config: str, cpu: CpuLimit | None = None, runs: int = 3
) -> tuple[list[float], list[float]]:
    """``kyukyu edge`` in tmux until its standby screen invites a tap (ready: the flow
    is open), and until its first frame (the standby screen, 起動中… while the flow
    opens, or already the invitation); in ``cpu``'s cgroup when given (the shell tmux
    starts joins it, then becomes the app)."""
    from tests.ui._terminal import Tmux

    command = [sys.executable, "-m", "kyukyu", "edge", "--config", config]
    if cpu is not None:
        join = f'echo $$ > {shlex.quote(str(cpu.procs))} && exec "$@"'
        command = ["sh", "-c", join, "sh", *command]
    out = []
    first = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            term = Tmux(Path(d))
            env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ["PATH"]}
            if "PYTHONPATH" in os.environ:
                env["PYTHONPATH"] = os.environ["PYTHONPATH"]
            t0 = time.perf_counter()
            term.start(command, env)
            try:
                seen_first = False
                while True:
                    screen = term.screen()
                    now = time.perf_counter() - t0
                    if not seen_first and ("起動中" in screen or "カードをタッチ" in screen):
                        first.append(now)
                        seen_first = True
                    if "カードをタッチしてください" in screen:
                        out.append(now)
                        break
                    if now > 60:
                        raise RuntimeError("no standby screen")
                    time.sleep(0.02)
            finally:
                term.kill()
    return out, first


def _taps(result: dict[str, Any]) -> dict[str, float]:
    taps = sorted(result["taps"])
    p95 = taps[min(len(taps) - 1, round(0.95 * (len(taps) - 1)))]
    return {
        "median": round(statistics.median(taps), 3),
        "p95": round(p95, 3),
        "max": round(taps[-1], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--pi-cases", type=int, default=8, help="cases under the Pi-class budget")
    ap.add_argument("--serve-hub", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--device", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_hub:
        serve_hub(args.serve_hub)
        return 0
    if args.device:
        device_main(args.device, args.cases, args.fd)
        return 0
    # A SIGTERM (a timeout) unwinds like Ctrl-C: the cgroup and the children go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        cpu = CpuLimit()  # fails at once, before the long part, when there is no cgroup
        stack.callback(cpu.close)
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
        world_line = hub.stdout.readline()
        world = json.loads(world_line)
        world_file = work / "world.json"
        world_file.write_text(world_line)
        PCSCD_LOCK.touch(exist_ok=True)
        lock = stack.enter_context(PCSCD_LOCK.open("w"))
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"edge_flow: waiting for {PCSCD_LOCK} (a test run uses pcscd)", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        # A device has pcscd running (a system service) and its bytecode compiled.
        from kyukyu import testing

        testing.ensure_pcscd()
        compile_bytecode()
        starts, firsts = cold_start(world["config"])
        full = run_device(world, world_file, args.cases, None)
        pi_starts, pi_firsts = cold_start(world["config"], cpu)
        pi = run_device(world, world_file, args.pi_cases, cpu)
        cpu_version = cpu.version
    rss = full["rss"]
    out = {
        "benchmark": "edge_flow",
        "link_kbps": LINK_KBPS,
        "cases": args.cases,
        "tap_to_summary_s": _taps(full),
        # Without pcscd's presence poll of the virtual reader (a USB reader signals at once).
        "detected_to_summary_s": {
            "median": round(statistics.median(full["from_detect"]), 3),
            "max": round(max(full["from_detect"]), 3),
        },
        # kyukyu edge -> the standby screen invites a tap (the flow is open).
        "cold_start_s": {"median": round(statistics.median(starts), 3), "runs": len(starts)},
        # kyukyu edge -> its first frame (起動中… while the flow opens).
        "first_frame_s": {"median": round(statistics.median(firsts), 3)},
        "rss_mb": {
            "before_cases": round(full["rss_before"], 1),
            "peak": round(full["peak_rss"], 1),
            "after_case_2": round(rss[1] if len(rss) > 1 else rss[0], 1),
            "after_last": round(rss[-1], 1),
            "growth_2_to_last": round(rss[-1] - (rss[1] if len(rss) > 1 else rss[0]), 1),
        },
        # The device's own process (app and flow) limited to 25 % of one core by a cgroup;
        # the platform, pcscd and the virtual card run outside it at full speed.
        "pi_class": {
            "cpu": f"25% of one core (cgroup {cpu_version})",
            "cases": args.pi_cases,
            "tap_to_summary_s": _taps(pi),
            "detected_to_summary_s": {"median": round(statistics.median(pi["from_detect"]), 3)},
            "cold_start_s": {
                "median": round(statistics.median(pi_starts), 3),
                "runs": len(pi_starts),
            },
            "first_frame_s": {"median": round(statistics.median(pi_firsts), 3)},
        },
        "targets": {
            "tap_to_summary_median_s": 1.0,
            "cold_start_s": 2.0,
            "peak_rss_mb": 150,
            "pi_class_tap_to_summary_median_s": 1.5,
            "pi_class_cold_start_s": 3.0,
        },
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
