"""kill -9 the sending process 200 times at random points: still exactly once at the hub."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sync.outbox import Outbox
from sync.seal import seal_case
from sync.signing import b64e
from tests.sync._hubcheck import assert_exactly_once
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate

ROOT = Path(__file__).resolve().parents[2]
N_START = 200
REFILL_BELOW = 40
N_KILLS = 200


@pytest.mark.slow
def test_kill_9_while_sending(tmp_path: Path) -> None:
    hub = make_real_hub(tmp_path)
    world = World()
    rng = random.Random(9)
    with serve(hub.app) as url:
        populate(hub, url, world, 3)
        db = tmp_path / "device" / "outbox.db"
        outbox = Outbox(db)  # the test's own connection, used to keep the queue fed
        case_ids: list[str] = []

        def refill(minimum: int) -> None:
            """Keep cases waiting so every kill finds a sender with work."""
            while outbox.pending_count() < minimum:
                cid = f"crash-{len(case_ids):04d}"
                outbox.enqueue(
                    seal_case(
                        rng.randbytes(600),
                        case_id=cid,
                        device_id=world.device_id,
                        device_key=world.device_key,
                        recipients=world.recipients(),
                    )
                )
                case_ids.append(cid)

        refill(N_START)
        raw_key = world.device_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        zygote = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sync._crash_zygote",
                str(db),
                url,
                world.device_id,
                b64e(raw_key),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert zygote.stdin is not None
        assert zygote.stdout is not None

        def cycle(kill_after: float | None) -> int:
            before = outbox.pending_count() if kill_after is not None else 0
            zygote.stdin.write("go\n")  # type: ignore[union-attr]
            zygote.stdin.flush()  # type: ignore[union-attr]
            pid = int(zygote.stdout.readline().split()[1])  # type: ignore[union-attr]
            if kill_after is not None:
                # Half the kills land at a random moment of the sender's start (before
                # anything is sent); the other half once it has sent something, at a
                # random moment after: a loaded machine, where a start takes longer than
                # any fixed delay, still sees kills mid-sending, never only at start.
                if rng.random() < 0.5:
                    deadline = time.monotonic() + 10
                    while outbox.pending_count() >= before and time.monotonic() < deadline:
                        time.sleep(0.002)
                time.sleep(kill_after)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return int(zygote.stdout.readline().split()[1])  # type: ignore[union-attr]

        try:
            killed = 0
            t0 = time.monotonic()
            for _ in range(N_KILLS):
                refill(REFILL_BELOW)
                status = cycle(rng.uniform(0.005, 0.08))
                if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
                    killed += 1
            kill_phase = time.monotonic() - t0
            left_after_kills = outbox.pending_count()
            outbox.close()
            final = cycle(None)  # one undisturbed run drains the rest
        finally:
            zygote.stdin.write("quit\n")
            zygote.stdin.flush()
            zygote.wait(10)
        assert killed >= N_KILLS * 0.9, f"only {killed} of {N_KILLS} senders were killed"
        assert left_after_kills > 0
        assert len(case_ids) - left_after_kills > 10, "hardly anything was sent while killing"
        assert os.WIFEXITED(final)
        assert os.WEXITSTATUS(final) == 0
        after = Outbox(db)
        assert after.pending_count() == 0
        assert len(after.statuses()) == len(case_ids)
        after.close()
        assert_exactly_once(hub.state, [h.id for h in world.hospitals], case_ids)
        print(f"{killed} kills in {kill_phase:.1f}s, {len(case_ids)} cases")
