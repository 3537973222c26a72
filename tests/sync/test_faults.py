"""1,000 cases through a fault-injecting proxy to the real hub: each arrives once everywhere."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from sync._backoff import Backoff
from sync.client import PlatformClient
from sync.outbox import Outbox
from sync.receiver import HospitalClient, Receiver, ReceiverState
from sync.seal import seal_case
from sync.sender import Sender
from tests.sync._hubcheck import assert_exactly_once
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate
from tests.sync.faultproxy import MODES, FaultProxy

N_CASES = 1000
N_HOSPITALS = 3


@pytest.mark.slow
def test_thousand_cases_through_random_faults(tmp_path: Path) -> None:
    hub = make_real_hub(tmp_path)
    world = World()
    with serve(hub.app) as url:
        populate(hub, url, world, N_HOSPITALS)
        port = int(url.rsplit(":", 1)[1])
        rng = random.Random(4)
        # Small caps keep the test fast; the production defaults are 0.5 s .. 60 s.
        backoff = Backoff(base=0.002, cap=0.05, max_retry_after=0.02, rng=rng)
        outbox = Outbox(tmp_path / "device" / "outbox.db", backoff=backoff)
        recipients = world.recipients()
        case_ids = [f"case-{i:05d}" for i in range(N_CASES)]
        for cid in case_ids:
            payload = rng.randbytes(rng.randint(200, 1500))
            outbox.enqueue(
                seal_case(
                    payload,
                    case_id=cid,
                    device_id=world.device_id,
                    device_key=world.device_key,
                    recipients=recipients,
                )
            )
        with FaultProxy(port, seed=11) as proxy:
            client = PlatformClient(
                f"http://127.0.0.1:{proxy.port}",
                key=world.device_key,
                device_id=world.device_id,
                timeout=httpx.Timeout(3.0, connect=2.0),
            )
            sender = Sender(outbox, client, concurrency=4)
            t0 = time.monotonic()
            report = sender.drain(timeout=150)
            elapsed = time.monotonic() - t0
            sender.close()
            client.close()
        assert report.remaining == 0, f"outbox not empty after {elapsed:.1f}s: {report}"
        assert outbox.pending_count() == 0
        assert report.delivered == N_CASES
        assert report.failures > 200, "the proxy injected too few faults to mean anything"
        # Every fault kind actually happened.
        assert all(proxy.counts[m] > 0 for m in proxy.modes), proxy.counts
        assert_exactly_once(hub.state, [h.id for h in world.hospitals], case_ids)
        # At the hospitals: every stream carries each case once (raw events, before
        # any dedupe) ...
        for h in world.hospitals:
            raw: Counter[str] = Counter()
            client_h = HospitalClient(url, hospital_id=h.id, key=h.signing)
            for ev in client_h.events(0):
                raw.update([json.loads(ev.data)["case_id"]])
                if len(raw) == N_CASES:
                    break
            client_h.close()
            assert set(raw) == set(case_ids)
            assert max(raw.values()) == 1
        # ... and the first hospital's receiver, itself behind a faulty proxy (streams
        # cut mid-event, acks lost, 5xx), catches up by event number after every cut
        # and hands each case over exactly once.
        h = world.hospitals[0]
        handed: Counter[str] = Counter()
        # No "slow" here: trickling 7 KB events 16 bytes at a time only costs time.
        rx_modes = {k: v for k, v in MODES.items() if k != "slow"}
        with FaultProxy(
            port, seed=12, modes=rx_modes, response_budget=(5_000, 150_000)
        ) as rx_proxy:
            rx = Receiver(
                HospitalClient(
                    f"http://127.0.0.1:{rx_proxy.port}",
                    hospital_id=h.id,
                    key=h.signing,
                    timeout=httpx.Timeout(3.0, connect=2.0),
                ),
                hospital_key=h.hpke,
                device_key_for=world.device_lookup,
                state=ReceiverState(tmp_path / "rx.db"),
                on_case=lambda c: handed.update([c.case_id]),
                backoff=Backoff(base=0.002, cap=0.02, max_retry_after=0.02, rng=rng),
            )
            stop = threading.Event()
            runner = threading.Thread(target=rx.run, args=(stop,), daemon=True)
            runner.start()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if len(handed) == N_CASES and not rx.state.unacked():
                    break
                time.sleep(0.05)
            stop.set()
            runner.join(10)
            rx.client.close()
        assert set(handed) == set(case_ids)
        assert max(handed.values()) == 1
        assert rx_proxy.counts["pass"] + rx_proxy.counts["delay"] > 5, rx_proxy.counts
        assert sum(rx_proxy.counts.values()) > 20, "the stream was hardly ever cut"
        assert not rx.state.unacked()
        # Only non-personal status is left on the device.
        statuses = outbox.statuses()
        assert len(statuses) == N_CASES
        assert all(s.delivered_at is not None for s in statuses)
        outbox.close()
