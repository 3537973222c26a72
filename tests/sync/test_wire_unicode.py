"""Nothing lost on the wire: any Unicode text arrives byte-equal (issue 7).

A device enrolled under a generated fire-department name sends a case whose every
free-text field holds generated text, through the real hub (uvicorn on loopback) to a
hospital ``Receiver``; the hospital declines with a generated reason, which the device
reads from its answer stream. Every event is checked (``stream_event``) and handed
over; the hospital's position is exactly the case's event. On PostgreSQL the case is
posted to one hub process and streamed by another, so it travels in a ``NOTIFY``
built partly in SQL (``hub_server/crud/_case_pg.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sync._http import stream_event
from sync.client import PlatformClient
from sync.fhir_case import CrewMember, DeviceInfo, VerifiedPatient, build_case_bundle
from sync.receiver import HospitalClient, ReceivedCase, Receiver, ReceiverState
from sync.seal import seal_json
from tests.components import fresh_postgres_database
from tests.sync._data import case_record
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate

# Every code point some splitter takes as a line break, and the SSE field separators.
BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029:"
FORGERY = "x\u2028\u2028id: 999999999\u2028data: x\u2028\u2028"
# All of Unicode but NUL (refused by the hub: PostgreSQL text cannot hold it) and lone
# surrogates (not encodable as UTF-8, so not JSON text at all), biased to the breaks.
char = st.one_of(
    st.sampled_from(BREAKS),
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
)
text = st.text(char, min_size=1, max_size=40)
EXAMPLES = 30
# One address enrolls a device and opens two streams per example: lift the hub's
# per-address and per-identity limits (their own tests are in tests/hub_server).
LIMITS = {"unsigned_rate": 1000.0, "unsigned_burst": 1000, "max_streams_per_identity": 1000}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hubs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """(hub, URL the device and the operator use, URL the hospital streams from)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            hub = make_real_hub(tmp_path, **LIMITS)
            url = stack.enter_context(serve(hub.app))
            yield hub, url, url
            return
        from hub_server.main import build_state, create_app

        db = stack.enter_context(fresh_postgres_database())
        hub = make_real_hub(tmp_path, db_url=db, **LIMITS)
        other = create_app(hub.state.settings, state=build_state(hub.state.settings))
        yield hub, stack.enter_context(serve(hub.app)), stack.enter_context(serve(other))


def test_any_text_arrives_byte_equal(hubs: tuple[Any, str, str], tmp_path: Path) -> None:
    hub, url, stream_url = hubs
    world = World()
    populate(hub, url, world, 1)
    h = world.hospitals[0]
    operator = hub.operator(url)
    hospital = HospitalClient(stream_url, hospital_id=h.id, key=h.signing)
    state = ReceiverState(tmp_path / "rx.db")
    got: list[ReceivedCase] = []
    device_keys: dict[str, Any] = {}
    rx = Receiver(
        hospital,
        hospital_key=h.hpke,
        device_key_for=device_keys.get,
        state=state,
        on_case=got.append,
        on_rejected=lambda *a: pytest.fail(f"rejected {a}"),
    )
    numbers = itertools.count(1)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        fire_department=text,
        device_name=text,
        patient=st.tuples(text, text),
        complaint=text,
        crew=text,
        reason=text,
    )
    @example(
        fire_department=FORGERY,
        device_name=FORGERY,
        patient=(FORGERY, "\r\n\r\n"),
        complaint="\u2028",
        crew="\x85",
        reason="\u2028\u2028id: 999999999\u2028data: x\u2028\u2028",
    )
    def round_trip(
        fire_department: str,
        device_name: str,
        patient: tuple[str, str],
        complaint: str,
        crew: str,
        reason: str,
    ) -> None:
        n = next(numbers)
        token = operator.request_json(
            "POST", "/v1/enrollment-tokens", body={"fire_department": fire_department}
        )["token"]
        key = Ed25519PrivateKey.generate()
        device = PlatformClient(url, key=key)
        device_id = device.enroll(token, device_name)
        device_keys[device_id] = key.public_key()
        base = case_record(f"u-{n}")
        record = dataclasses.replace(
            base,
            device=DeviceInfo(device_id, device_name, fire_department),
            patient=VerifiedPatient(name=patient[0], address=patient[1]),
            chief_complaint=complaint,
            crew=[CrewMember("TFD-1", crew, crew)],
        )
        bundle = build_case_bundle(record)
        envelope = seal_json(
            bundle,
            case_id=record.case_id,
            device_id=device_id,
            device_key=key,
            recipients={h.id: h.hpke.public_key()},
        )
        before = state.last_event
        posted: list[bool] = []

        def post_once() -> None:  # on the stream's first keep-alive: the case comes live
            if not posted:
                posted.append(True)
                device.post_case(record.case_id, [h.id], envelope, idempotency_key=f"k{n}")

        seen: list[dict[str, Any]] = []
        for sse in hospital.events(before, on_keepalive=post_once):
            seen.append(stream_event(sse).data)  # raises MalformedEvent: never skipped
            rx.handle(sse)
            if got and got[-1].case_id == record.case_id:
                break
        assert [d["case_id"] for d in seen] == [record.case_id]
        assert seen[0]["fire_department"] == fire_department
        assert seen[0]["device_id"] == device_id
        assert state.last_event == seen[0]["seq"] == before + 1
        opened = got[-1].opened
        assert opened.payload.decode("utf-8") == _json(bundle)
        assert opened.bundle() == bundle

        answered: list[bool] = []

        def answer_once() -> None:
            if not answered:
                answered.append(True)
                hospital.answer(record.case_id, "decline", reason)

        answers = []
        for ev in device.device_events(after=0, on_keepalive=answer_once):
            answers.append(ev)
            if ev.kind == "answer":
                break
        # The hospital's ack first (病院に到着), then its answer.
        assert [(a.seq, a.kind) for a in answers] == [(1, "received"), (2, "answer")]
        assert answers[1].data["reason"] == reason
        assert answers[1].data["case_id"] == record.case_id
        device.close()

    try:
        round_trip()
    finally:
        hospital.close()
        operator.close()
        state.close()


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
