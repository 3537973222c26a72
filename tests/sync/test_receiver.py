"""The hospital receiver: stream, catch-up by event number, dedupe, ack, rejection."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sync import EnvelopeError, NotARecipient, TransportError
from sync.client import PlatformClient
from sync.fhir_case import build_case_bundle
from sync.receiver import HospitalClient, ReceivedCase, Receiver, ReceiverState
from sync.seal import HospitalKey, seal_json
from tests.sync._data import PATIENT_NAME, case_record
from tests.sync._net import Hospital, World, serve
from tests.sync._realhub import make_real_hub, populate
from tests.sync.fakehub import FakeHub


@dataclass
class Env:
    kind: str
    url: str
    world: World
    fake: FakeHub | None
    device: PlatformClient

    def post(self, case_id: str, recipients: list[Hospital] | None = None) -> bytes:
        chosen = recipients or self.world.hospitals
        env = seal_json(
            build_case_bundle(case_record(case_id)),
            case_id=case_id,
            device_id=self.world.device_id,
            device_key=self.world.device_key,
            recipients={h.id: h.hpke.public_key() for h in chosen},
        )
        self.device.post_case(case_id, [h.id for h in chosen], env, idempotency_key=case_id)
        return env


@pytest.fixture(params=["fake", "real"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    world = World()
    if request.param == "fake":
        fake = FakeHub()
        world.hospitals = [Hospital(id=f"h{i}") for i in range(3)]
        fake.add_key(f"device:{world.device_id}", world.device_key.public_key())
        for h in world.hospitals:
            fake.add_hospital(h.id, h.signing.public_key())
        app: Any = fake.app
    else:
        fake = None
        hub = make_real_hub(tmp_path)
        app = hub.app
    with serve(app) as url:
        if fake is None:
            populate(hub, url, world, 3)
        device = PlatformClient(url, key=world.device_key, device_id=world.device_id)
        yield Env(request.param, url, world, fake, device)
        device.close()


class Collector:
    def __init__(self) -> None:
        self.cases: list[ReceivedCase] = []
        self.rejected: list[tuple[int, str | None, EnvelopeError]] = []

    def on_case(self, case: ReceivedCase) -> None:
        self.cases.append(case)

    def on_rejected(self, seq: int, case_id: str | None, err: EnvelopeError) -> None:
        self.rejected.append((seq, case_id, err))


def receiver(
    env: Env, h: Hospital, state: ReceiverState, got: Collector, key: HospitalKey | None = None
) -> Receiver:
    client = HospitalClient(env.url, hospital_id=h.id, key=h.signing)
    return Receiver(
        client,
        hospital_key=h.hpke if key is None else key,
        device_key_for=env.world.device_lookup,
        state=state,
        on_case=got.on_case,
        on_rejected=got.on_rejected,
    )


def read_until(rx: Receiver, got: Collector, n: int, timeout: float = 10.0) -> None:
    """Run the receiver until ``n`` cases (or rejections) arrived."""
    stop = threading.Event()
    t = threading.Thread(target=rx.run, args=(stop,), daemon=True)
    t.start()
    deadline = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if len(got.cases) + len(got.rejected) >= n:
            last = max([c.event_id for c in got.cases] + [r[0] for r in got.rejected])
            if rx.state.last_event >= last:  # handed over, acknowledged and recorded
                break
        deadline.wait(0.02)
    stop.set()
    rx.client.close()  # ends a stream that is waiting for the next event
    t.join(5)


def test_receive_open_ack_and_catch_up(env: Env, tmp_path: Path) -> None:
    h = env.world.hospitals[0]
    for i in range(3):
        env.post(f"c{i}")
    state = ReceiverState(tmp_path / "hospital" / "rx.db")
    got = Collector()
    read_until(receiver(env, h, state, got), got, 3)
    assert [c.case_id for c in got.cases] == ["c0", "c1", "c2"]
    bundle = got.cases[0].bundle()
    assert bundle["resourceType"] == "Bundle"
    assert PATIENT_NAME in json.dumps(bundle, ensure_ascii=False)
    assert state.last_event == got.cases[-1].event_id
    if env.fake is not None:
        assert env.fake.acks[(h.id, "c0")] == 1
    # A gap: more cases while the hospital is away; a restart resumes after the cursor.
    for i in range(3, 6):
        env.post(f"c{i}")
    state.close()
    state2 = ReceiverState(tmp_path / "hospital" / "rx.db")
    got2 = Collector()
    read_until(receiver(env, h, state2, got2), got2, 3)
    assert [c.case_id for c in got2.cases] == ["c3", "c4", "c5"]
    assert state2.received_ids() == [f"c{i}" for i in range(6)]


def test_duplicate_and_tampered_events(env: Env, tmp_path: Path) -> None:
    if env.fake is None:
        pytest.fail("fake hub only")  # never reached: parametrised below
    h = env.world.hospitals[0]
    good = env.post("d0")
    # The same case announced twice (a hub retry): handed over once, acked again.
    env.fake.events[h.id].append(dict(env.fake.events[h.id][0], seq=2))
    # A tampered envelope: one flipped byte.
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 1
    env.fake.events[h.id].append(
        {"seq": 3, "case_id": "d0x", "envelope": base64.b64encode(bytes(bad)).decode()}
    )
    # A replay: a case sealed for h1 only, delivered to h0.
    other = env.post("d1", [env.world.hospitals[1]])
    env.fake.events[h.id].append(
        {"seq": 4, "case_id": "d1", "envelope": base64.b64encode(other).decode()}
    )
    state = ReceiverState(tmp_path / "rx.db")
    got = Collector()
    read_until(receiver(env, h, state, got), got, 3)
    assert [c.case_id for c in got.cases] == ["d0"]
    assert env.fake.acks[(h.id, "d0")] == 2
    codes = {cid: err for _, cid, err in got.rejected}
    assert set(codes) == {"d0x", "d1"}
    assert isinstance(codes["d1"], NotARecipient)
    assert state.last_event == 4


test_duplicate_and_tampered_events = pytest.mark.parametrize("env", ["fake"], indirect=True)(
    test_duplicate_and_tampered_events
)


@pytest.mark.parametrize("env", ["fake"], indirect=True)
def test_lost_ack_is_retried_before_the_next_stream(env: Env, tmp_path: Path) -> None:
    assert env.fake is not None
    h = env.world.hospitals[0]
    env.post("a0")
    state = ReceiverState(tmp_path / "rx.db")
    got = Collector()
    rx = receiver(env, h, state, got)
    calls: list[str] = []

    def failing_ack(case_id: str) -> None:
        calls.append(case_id)
        raise TransportError("down")

    rx.client.ack = failing_ack  # type: ignore[method-assign]
    read_until(rx, got, 1)
    assert [c.case_id for c in got.cases] == ["a0"]
    assert state.unacked() == ["a0"]
    assert env.fake.acks[(h.id, "a0")] == 0
    rx2 = receiver(env, h, state, Collector())
    assert rx2.client.ack is not failing_ack
    rx2.flush_acks()
    assert state.unacked() == []
    assert env.fake.acks[(h.id, "a0")] == 1
    assert set(calls) == {"a0"}  # tried at once, and again on the stream's keep-alives


@pytest.mark.parametrize("env", ["fake"], indirect=True)
def test_unreadable_event_is_reported_and_retried_never_skipped(env: Env, tmp_path: Path) -> None:
    from sync import MalformedEvent

    assert env.fake is not None
    h = env.world.hospitals[0]
    env.post("m0")
    events = env.fake.events[h.id]
    good = dict(events[0])
    events.append({"seq": 2, "case_id": "m1"})  # a case event without its envelope
    state = ReceiverState(tmp_path / "rx.db")
    got = Collector()
    rx = receiver(env, h, state, got)
    errors: list[Exception] = []
    rx.on_error = errors.append
    with pytest.raises(MalformedEvent):
        rx.run_once()
    assert [c.case_id for c in got.cases] == ["m0"]
    assert state.last_event == 1  # not moved past the event that was not handed over
    stop = threading.Event()
    t = threading.Thread(target=rx.run, args=(stop,), daemon=True)
    t.start()
    for _ in range(200):
        if errors:
            break
        threading.Event().wait(0.02)
    assert errors
    assert isinstance(errors[0], MalformedEvent)  # reported, and retried (reconnect)
    events[1] = dict(good, seq=2)  # the platform repairs it: handed over at the retry
    for _ in range(400):
        if state.last_event == 2:
            break
        threading.Event().wait(0.02)
    stop.set()
    rx.client.close()
    t.join(5)
    assert state.last_event == 2
    assert state.received_ids() == ["m0"]  # the repaired event repeats m0: not twice


def test_a_mixed_fleet_v2_and_v1_through_the_hub(env: Env, tmp_path: Path) -> None:
    """The platform routes a v2 envelope as it does v1 (opaque bytes, the same clear
    header); a hospital holding both keys opens both, one still without its hybrid key
    opens v1 and records v2 as ``envelope_wrong_key_kind`` and reads on."""
    from sync import WrongKeyKind
    from sync.seal import OpeningKeys, SealingKeys
    from sync.xwing import XWingPrivateKey

    h0, h1 = env.world.hospitals[:2]
    hybrid = {h0.id: XWingPrivateKey.generate(), h1.id: XWingPrivateKey.generate()}

    def post(case_id: str, *, with_hybrid: bool) -> None:
        recipients = {
            h.id: SealingKeys(
                x25519=h.hpke.public_key(),
                xwing=hybrid[h.id].public_key() if with_hybrid else None,
            )
            for h in (h0, h1)
        }
        sealed = seal_json(
            build_case_bundle(case_record(case_id)),
            case_id=case_id,
            device_id=env.world.device_id,
            device_key=env.world.device_key,
            recipients=recipients,
        )
        env.device.post_case(case_id, [h0.id, h1.id], sealed, idempotency_key=case_id)

    post("pq-0", with_hybrid=True)
    post("v1-0", with_hybrid=False)
    got = Collector()
    both = OpeningKeys(x25519=h0.hpke, xwing=hybrid[h0.id])
    read_until(receiver(env, h0, ReceiverState(tmp_path / "h0.db"), got, both), got, 2)
    assert [c.case_id for c in got.cases] == ["pq-0", "v1-0"]
    assert PATIENT_NAME in json.dumps(got.cases[0].bundle(), ensure_ascii=False)

    old = Collector()
    read_until(receiver(env, h1, ReceiverState(tmp_path / "h1.db"), old), old, 2)
    assert [c.case_id for c in old.cases] == ["v1-0"]
    assert [(cid, type(err)) for _, cid, err in old.rejected] == [("pq-0", WrongKeyKind)]
