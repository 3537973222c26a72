"""One representation per hop (issue 27, docs/envelope.md "What each hop parses"): the
sealed case's base64 text a device posts reaches the recipient's event stream byte for
byte, the hub passing it through instead of encoding the stored bytes again; and on
PostgreSQL a v2 case event (too big for a notification) is read once per process for all
its recipients' streams, not once per stream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub_server.core.db import libpq_url
from hub_server.core.events import CHANNEL, EventBus, PendingEvent, PgListener
from hub_server.core.events.notify import notification_payload
from hub_server.main import _events_with_data
from sync.envelope import V2, SealedCase
from sync.seal import OpeningKeys, SealingKeys, open_case, seal_case
from sync.xwing import XWingPrivateKey
from tests.hub_server._support import Hub, Signer, sse_events, until

pytestmark = pytest.mark.anyio

_STREAM = "/v1/hospitals/me/events"


def _v2_case(device: Signer, case_id: str, hids: list[str]) -> tuple[bytes, dict[str, Any]]:
    keys = {hid: (X25519PrivateKey.generate(), XWingPrivateKey.generate()) for hid in hids}
    envelope = seal_case(
        b'{"resourceType":"Bundle","type":"document"}' + b" " * 4000,
        case_id=case_id,
        device_id=device.key_id.split(":", 1)[1],
        device_key=device.key,
        recipients={
            hid: SealingKeys(x25519=x.public_key(), xwing=w.public_key())
            for hid, (x, w) in keys.items()
        },
        version=V2,
    )
    return envelope, keys


async def test_the_posted_base64_reaches_the_stream_byte_for_byte_not_reencoded(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = await hub.enroll_device()
    hid, hs = await hub.register_hospital()
    envelope, keys = _v2_case(device, "wire-1", [hid])
    posted = base64.b64encode(envelope).decode()
    async with hub.client.stream("GET", _STREAM, headers=hs.headers("GET", _STREAM)) as r:
        assert r.status_code == 200
        await until(lambda: hub.state.bus.streams_of(f"hospital:{hid}") == 1, "the stream")

        def encoded_again(raw: bytes) -> str:
            raise AssertionError("the hub encoded the envelope again")

        # The post and its live event: the envelope is never base64-encoded by the hub.
        with monkeypatch.context() as m:
            m.setattr("sync.envelope.b64e_std", encoded_again)
            resp = await hub.post_case(device, [hid], case_id="wire-1", envelope=envelope)
            assert resp.status_code == 201, resp.text
            [(_, kind, data)] = await asyncio.wait_for(sse_events(r, 1), 10)
    assert kind == "case"
    assert data["envelope"] == posted  # the device's text, byte for byte
    # A catch-up read from the database gives the same text (strict base64 is canonical).
    path = f"{_STREAM}?after=0"
    async with hub.client.stream("GET", path, headers=hs.headers("GET", path)) as r:
        [(_, _, again)] = await asyncio.wait_for(sse_events(r, 1), 10)
    assert again["envelope"] == posted
    x, w = keys[hid]
    sealed = SealedCase.from_text(data["envelope"])
    assert sealed.version == V2
    opened = open_case(
        sealed,
        hospital_id=hid,
        hospital_key=OpeningKeys(x25519=x, xwing=w),
        device_key_for=lambda _d: device.key.public_key(),
        expected_case_id="wire-1",
    )
    assert opened.payload.startswith(b'{"resourceType"')


async def test_another_process_reads_a_v2_case_event_once_for_all_its_streams(
    pg_hub: Hub,
) -> None:
    hub = pg_hub
    device = await hub.enroll_device()
    hids = [(await hub.register_hospital(f"病院{i}"))[0] for i in range(3)]
    envelope, _ = _v2_case(device, "wire-pg", hids)
    assert (await hub.post_case(device, hids, case_id="wire-pg", envelope=envelope)).status_code
    # What another process hears: the events by number only (the data is over the limit).
    events = [PendingEvent(f"hospital:{hid}", 1, "case", None) for hid in hids]
    payload = notification_payload(events, "another-process")
    assert '"d":' not in payload
    conninfo = libpq_url(hub.state.settings.db_url)
    reads: list[int] = []

    def fill(evs: list[PendingEvent]) -> list[PendingEvent]:
        reads.append(len(evs))
        return _events_with_data(hub.state, evs)

    bus = EventBus()
    listener = PgListener(conninfo, bus, fill=fill)
    with contextlib.ExitStack() as stack:
        subs = [stack.enter_context(bus.subscribe(f"hospital:{hid}")) for hid in hids]
        await _hear(listener, conninfo, payload, subs, reads, envelope)


async def _hear(
    listener: PgListener,
    conninfo: str,
    payload: str,
    subs: list[Any],
    reads: list[int],
    envelope: bytes,
) -> None:
    listener.start()
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        await until(lambda: all(sub.queue for sub in subs), "the events with their data")
        got = [sub.queue[0] for sub in subs]
        assert reads == [3]  # one read for the three streams
        assert all(ev.data is got[0].data for ev in got)  # one shared dict: encoded once
        assert got[0].data is not None
        assert got[0].data["envelope"] == base64.b64encode(envelope).decode()
        assert got[0].data["case_id"] == "wire-pg"
    finally:
        await listener.stop()
