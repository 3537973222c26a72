"""Cases: idempotency, SSE push and catch-up, answers on the device stream, isolation, purge."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from datetime import timedelta

import pytest

from hub_server.main import purge_once
from hub_server.models import Case
from tests.hub_server._support import Hub, sse_events

pytestmark = pytest.mark.anyio


async def test_case_reaches_every_recipient_live_and_only_them(hub: Hub) -> None:
    device = await hub.enroll_device()
    hospitals = [await hub.register_hospital(f"病院{i}") for i in range(3)]
    (h1, s1), (h2, _s2), (h3, s3) = hospitals
    envelope = secrets.token_bytes(4096)
    async with (
        hub.client.stream(
            "GET", "/v1/hospitals/me/events", headers=s1.headers("GET", "/v1/hospitals/me/events")
        ) as r1,
        hub.client.stream(
            "GET", "/v1/hospitals/me/events", headers=s3.headers("GET", "/v1/hospitals/me/events")
        ) as r3,
    ):
        assert r1.status_code == 200
        assert r1.headers["content-type"].startswith("text/event-stream")
        resp = await hub.post_case(device, [h1, h2], case_id="case-A", envelope=envelope)
        assert resp.status_code == 201, resp.text
        [(seq, kind, data)] = await asyncio.wait_for(sse_events(r1, 1), 10)
        assert (seq, kind, data["case_id"]) == (1, "case", "case-A")
        assert base64.b64decode(data["envelope"]) == envelope
        # Hospital 3 is no recipient: a later case to it is the first thing it sees.
        resp = await hub.post_case(device, [h3], case_id="case-B")
        [(seq3, _, data3)] = await asyncio.wait_for(sse_events(r3, 1), 10)
        assert (seq3, data3["case_id"]) == (1, "case-B")


async def test_reconnect_catches_up_after_last_event_id(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, hs = await hub.register_hospital()
    for i in range(5):
        assert (await hub.post_case(device, [hid], case_id=f"c{i}")).status_code == 201
    path = "/v1/hospitals/me/events?after=2"
    async with hub.client.stream("GET", path, headers=hs.headers("GET", path)) as r:
        got = await asyncio.wait_for(sse_events(r, 3), 10)
    assert [(s, d["case_id"]) for s, _, d in got] == [(3, "c2"), (4, "c3"), (5, "c4")]
    path = "/v1/hospitals/me/events"
    headers = {**hs.headers("GET", path), "Last-Event-ID": "4"}
    async with hub.client.stream("GET", path, headers=headers) as r:
        [(s, _, d)] = await asyncio.wait_for(sse_events(r, 1), 10)
        assert (s, d["case_id"]) == (5, "c4")
        # ...and then live events continue with the next number.
        await hub.post_case(device, [hid], case_id="c5")
        [(s, _, d)] = await asyncio.wait_for(sse_events(r, 1), 10)
        assert (s, d["case_id"]) == (6, "c5")


async def test_idempotency_key_same_payload_same_result_other_payload_422(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    env = secrets.token_bytes(64)
    first = await hub.post_case(device, [hid], case_id="idem-1", key="k-1", envelope=env)
    again = await hub.post_case(device, [hid], case_id="idem-1", key="k-1", envelope=env)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await hub.post_case(device, [hid], case_id="idem-2", key="k-1", envelope=env)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # The case was stored once, with one event.
    with hub.state.session() as s:
        assert s.get(Case, "idem-1") is not None
        assert s.get(Case, "idem-2") is None
    # Another key for the same sealed case answers the one stored case (200), never a
    # second (the device's post after a hospital handed the case in: docs/disaster.md);
    # other bytes under the same case id are a conflict.
    dup = await hub.post_case(device, [hid], case_id="idem-1", key="k-2", envelope=env)
    assert dup.status_code == 200
    assert dup.json() == first.json()
    clash = await hub.post_case(
        device, [hid], case_id="idem-1", key="k-3", envelope=secrets.token_bytes(64)
    )
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "case_exists"


async def test_in_progress_key_is_409(hub: Hub) -> None:
    from hub_server import crud
    from hub_server.core.db import utcnow
    from hub_server.core.security import sha256_hex
    from sync.signed import canonical_json

    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    body = {
        "case_id": "prog",
        "recipients": [hid],
        "envelope": base64.b64encode(b"x" * 10).decode(),
    }
    with hub.state.session() as s:  # a first request that is still being processed
        assert (
            crud.begin_idempotent(
                s,
                owner=device.key_id,
                key="busy",
                request_hash=sha256_hex(canonical_json(body)),
                now=utcnow(),
            )
            is None
        )
    r = await hub.call(device, "POST", "/v1/cases", body, headers={"Idempotency-Key": "busy"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "request_in_progress"


async def test_recipients_must_be_registered_hospitals(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    r = await hub.post_case(device, [hid, "nosuchhospital"])
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_recipient"
    r = await hub.post_case(device, [hid, hid])
    assert r.status_code == 422


async def test_oversized_body_is_413_with_json_error(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    r = await hub.post_case(
        device, [hid], envelope=secrets.token_bytes(hub.state.settings.max_body_bytes)
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


async def test_answers_reach_the_sending_device_live(hub: Hub) -> None:
    device = await hub.enroll_device()
    other_device = await hub.enroll_device(name="救急2")
    (h1, s1), (h2, s2) = await hub.register_hospital("A"), await hub.register_hospital("B")
    await hub.post_case(device, [h1, h2], case_id="ans")
    path = "/v1/devices/me/events"
    async with hub.client.stream("GET", path, headers=device.headers("GET", path)) as stream:
        r = await hub.call(
            s1, "POST", "/v1/cases/ans/answers", {"answer": "decline", "reason": "満床"}
        )
        assert r.status_code == 201, r.text
        r = await hub.call(s2, "POST", "/v1/cases/ans/answers", {"answer": "accept"})
        assert r.status_code == 201
        got = await asyncio.wait_for(sse_events(stream, 2), 10)
    assert [(d["hospital_id"], d["answer"]) for _, _, d in got] == [(h1, "decline"), (h2, "accept")]
    # The device confirms the destination; both hospitals are told whether they were chosen.
    r = await hub.call(device, "POST", "/v1/cases/ans/destination", {"hospital_id": h2})
    assert r.status_code == 200, r.text
    p = "/v1/hospitals/me/events?after=1"
    async with hub.client.stream("GET", p, headers=s2.headers("GET", p)) as stream:
        [(_, kind, data)] = await asyncio.wait_for(sse_events(stream, 1), 10)
    assert kind == "destination"
    assert data["chosen"] is True
    # Another device cannot set the destination or read the case.
    r = await hub.call(other_device, "POST", "/v1/cases/ans/destination", {"hospital_id": h1})
    assert r.status_code == 404
    r = await hub.call(other_device, "GET", "/v1/cases/ans")
    assert r.status_code == 404
    status = (await hub.call(device, "GET", "/v1/cases/ans")).json()
    assert status["destination_hospital_id"] == h2
    assert {x["hospital_id"]: x["answer"] for x in status["recipients"]} == {
        h1: "decline",
        h2: "accept",
    }


async def test_hospital_cannot_answer_or_ack_another_hospitals_case(hub: Hub) -> None:
    device = await hub.enroll_device()
    (h1, _), (_, s2) = await hub.register_hospital("A"), await hub.register_hospital("B")
    await hub.post_case(device, [h1], case_id="mine")
    for path, body in (
        ("/v1/cases/mine/answers", {"answer": "accept"}),
        ("/v1/cases/mine/ack", None),
    ):
        r = await hub.call(s2, "POST", path, body)
        assert r.status_code == 404
    p = "/v1/hospitals/me/events"
    async with hub.client.stream("GET", p, headers=s2.headers("GET", p)) as stream:
        await hub.post_case(device, [h1], case_id="mine-2")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sse_events(stream, 1), 0.5)


async def test_purge_drops_ciphertext_of_delivered_cases_only(hub: Hub) -> None:
    device = await hub.enroll_device()
    (h1, s1), (h2, s2) = await hub.register_hospital("A"), await hub.register_hospital("B")
    await hub.post_case(device, [h1, h2], case_id="done")
    await hub.post_case(device, [h1, h2], case_id="half")
    for signer in (s1, s2):
        assert (await hub.call(signer, "POST", "/v1/cases/done/ack")).status_code == 200
    assert (await hub.call(s1, "POST", "/v1/cases/half/ack")).status_code == 200
    hub.state.settings = hub.state.settings.with_(case_retention_seconds=0)
    assert purge_once(hub.state) == 1
    with hub.state.session() as s:
        done, half = s.get(Case, "done"), s.get(Case, "half")
        assert done is not None
        assert done.envelope is None
        assert done.purged_at is not None
        assert half is not None
        assert half.envelope is not None
    # A hospital catching up later sees the case was purged rather than a broken event.
    p = "/v1/hospitals/me/events"
    async with hub.client.stream("GET", p, headers=s1.headers("GET", p)) as stream:
        got = await asyncio.wait_for(sse_events(stream, 2), 10)
    by_case = {d["case_id"]: d for _, _, d in got}
    assert by_case["done"]["envelope"] is None
    assert by_case["done"]["purged"] is True
    assert by_case["half"]["envelope"]
    _ = timedelta


async def test_concurrent_cases_get_gapless_numbers_per_hospital(hub: Hub) -> None:
    """Overlapping recipient sets posted at once: no deadlock, numbers 1..n per hospital."""
    import random

    from sqlmodel import col, select

    from hub_server.models import Event

    devices = [await hub.enroll_device(name=f"d{i}") for i in range(4)]
    ids = [(await hub.register_hospital(f"h{i}"))[0] for i in range(6)]
    rng = random.Random(7)
    plans = [(devices[i % 4], rng.sample(ids, 4)) for i in range(24)]
    results = await asyncio.gather(*(hub.post_case(d, r) for d, r in plans))
    assert [r.status_code for r in results] == [201] * len(plans)
    with hub.state.session() as s:
        for hid in ids:
            seqs = s.exec(
                select(Event.seq)
                .where(Event.recipient == f"hospital:{hid}")
                .order_by(col(Event.seq))
            ).all()
            expected = sum(hid in r for _, r in plans)
            assert list(seqs) == list(range(1, expected + 1))


async def test_stream_of_a_revoked_device_ends(hub: Hub) -> None:
    device = await hub.enroll_device()
    hub.state.settings = hub.state.settings.with_(sse_keepalive_seconds=0.2)
    path = "/v1/devices/me/events"
    async with hub.client.stream("GET", path, headers=device.headers("GET", path)) as stream:
        r = await hub.call(
            hub.operator, "POST", f"/v1/devices/{device.key_id.split(':')[1]}/revoke"
        )
        assert r.status_code == 200
        text = await asyncio.wait_for(stream.aread(), 10)
    assert b"event: revoked" in text


async def test_destination_needs_an_accept_or_a_phone_call_and_closure_is_relayed(
    hub: Hub,
) -> None:
    device = await hub.enroll_device()
    other_device = await hub.enroll_device(name="救急2")
    (h1, s1), (h2, s2) = await hub.register_hospital("A"), await hub.register_hospital("B")
    (h3, _) = await hub.register_hospital("C")
    await hub.post_case(device, [h1, h2], case_id="cl")
    r = await hub.call(s1, "POST", "/v1/cases/cl/answers", {"answer": "decline", "reason": "満床"})
    assert r.status_code == 201
    # Declined (h1) or silent (h2): never the destination "by its answer".
    for hid in (h1, h2):
        r = await hub.call(device, "POST", "/v1/cases/cl/destination", {"hospital_id": hid})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "not_accepted"
        assert "電話" in r.json()["error"]["message_ja"]
    r = await hub.call(
        device, "POST", "/v1/cases/cl/destination", {"hospital_id": h1, "via": "fax"}
    )
    assert r.status_code == 422
    r = await hub.call(
        device, "POST", "/v1/cases/cl/destination", {"hospital_id": h3, "via": "phone"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "not_a_recipient"
    r = await hub.call(
        device, "POST", "/v1/cases/cl/destination", {"hospital_id": h1, "via": "phone"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["via"] == "phone"

    # 中止: only the sending device, only to exactly the case's recipients, once.
    sealed = base64.b64encode(secrets.token_bytes(300)).decode()
    body = {"recipients": [h1, h2], "envelope": sealed}
    r = await hub.call(other_device, "POST", "/v1/cases/cl/closure", body)
    assert r.status_code == 404
    r = await hub.call(device, "POST", "/v1/cases/cl/closure", {**body, "recipients": [h1]})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "not_the_recipients"
    r = await hub.call(device, "POST", "/v1/cases/cl/closure", body)
    assert r.status_code == 201, r.text
    r = await hub.call(device, "POST", "/v1/cases/cl/closure", body)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "case_closed"
    r = await hub.call(
        device, "POST", "/v1/cases/cl/destination", {"hospital_id": h2, "via": "phone"}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "case_closed"
    for hs in (s1, s2):
        p = "/v1/hospitals/me/events?after=1"
        async with hub.client.stream("GET", p, headers=hs.headers("GET", p)) as stream:
            got = await asyncio.wait_for(sse_events(stream, 2), 10)
        assert [k for _, k, _ in got] == ["destination", "closure"]
        assert got[0][2]["via"] == "phone"
        assert got[1][2]["envelope"] == sealed
    r = await hub.call(device, "GET", "/v1/cases/cl")
    assert r.json()["destination_hospital_id"] == h1
    # Retention: the closure's sealed document goes like the case's.
    hub.state.settings = hub.state.settings.with_(case_retention_seconds=0)
    purge_once(hub.state)
    p = "/v1/hospitals/me/events?after=2"
    async with hub.client.stream("GET", p, headers=s1.headers("GET", p)) as stream:
        [(_, kind, data)] = await asyncio.wait_for(sse_events(stream, 1), 10)
    assert kind == "closure"
    assert data["envelope"] is None
    assert data["purged"] is True
    from sqlmodel import select

    from hub_server.models import AuditEntry

    with hub.state.session() as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.subject == "case:cl")).all()
    audited = {a.action: json.loads(a.details) for a in rows}
    assert audited["destination_confirmed"] == {"hospital_id": h1, "via": "phone"}
    assert audited["case_closed"] == {"recipients": 2}
