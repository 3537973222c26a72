"""Group commit of case posts on PostgreSQL (``services.case_writer``): the cases that
arrive while a transaction is being written go together in the next one, numbered
without gaps, and a bad case in a batch fails only itself.

The writer is held deterministically: a test transaction locks a recipient hospital's
row, the first case waits on that lock inside its batch, and the next cases queue up
behind it until the lock is released.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import pytest
from sqlalchemy import text

from hub_server.core.audit import verify_chain
from tests.hub_server._support import Hub, until

pytestmark = pytest.mark.anyio


def _rows(hub: Hub, sql: str, **params: Any) -> list[Any]:
    with hub.state.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


class HeldWriter:
    """Holds the hub's case writer on a locked hospital row until ``release``."""

    def __init__(self, hub: Hub, hospital_id: str) -> None:
        self.hub = hub
        self.conn = hub.state.engine.connect()
        self.tx = self.conn.begin()
        self.conn.execute(
            text("SELECT 1 FROM hospitals WHERE id = :id FOR UPDATE"), {"id": hospital_id}
        )

    def waiting_on_lock(self) -> bool:
        rows = _rows(self.hub, "SELECT count(*) FROM pg_locks WHERE NOT granted")
        return int(rows[0][0]) > 0

    def queued(self) -> int:
        writer = self.hub.state.case_writer
        return 0 if writer is None else writer._queue.qsize()

    def release(self) -> None:
        self.tx.commit()
        self.conn.close()


def _body(case_id: str, recipients: list[str]) -> dict[str, Any]:
    envelope = base64.b64encode(secrets.token_bytes(300)).decode()
    return {"case_id": case_id, "recipients": recipients, "envelope": envelope}


async def test_cases_arriving_meanwhile_share_one_commit_and_are_numbered_in_order(
    pg_hub: Hub,
) -> None:
    hub = pg_hub
    devices = [await hub.enroll_device(name=f"救急{i}") for i in range(3)]
    hospitals = [(await hub.register_hospital(name=f"病院{i}"))[0] for i in range(4)]
    held = HeldWriter(hub, hospitals[0])
    first = asyncio.create_task(hub.post_case(devices[0], [hospitals[0]], case_id="g-first"))
    await until(held.waiting_on_lock, "the first case to wait on the locked row")
    posts = [
        asyncio.create_task(
            hub.post_case(
                devices[i % 3],
                [hospitals[i % 4], hospitals[(i + 1) % 4], hospitals[(i + 2) % 4]],
                case_id=f"g-{i:02d}",
            )
        )
        for i in range(12)
    ]
    await until(lambda: held.queued() == 12, "12 cases queued behind the first")
    held.release()
    answers = await asyncio.gather(first, *posts)
    assert [r.status_code for r in answers] == [201] * 13, [r.text for r in answers]
    writer = hub.state.case_writer
    assert (writer.batches, writer.cases) == (2, 13)  # the first alone, then the 12 together
    for hid in hospitals:
        seqs = [
            r.seq
            for r in _rows(
                hub, "SELECT seq FROM events WHERE recipient = :r ORDER BY seq", r=f"hospital:{hid}"
            )
        ]
        (counter,) = _rows(hub, "SELECT event_seq FROM hospitals WHERE id = :id", id=hid)
        assert seqs == list(range(1, len(seqs) + 1)), (hid, seqs)
        assert counter[0] == len(seqs)
    # One order for the whole batch: two cases sent to the same hospitals come in the same
    # order at each of them.
    pairs = _rows(
        hub,
        "SELECT hospital_id, case_id, event_seq FROM case_recipients WHERE case_id LIKE 'g-__'",
    )
    seq = {(h, c): q for h, c, q in pairs}
    cases = sorted({c for _, c, _ in pairs})
    shared = 0
    for a in cases:
        for b in cases:
            common = [h for h in hospitals if (h, a) in seq and (h, b) in seq]
            if a < b and len(common) >= 2:
                shared += 1
                assert len({seq[h, a] < seq[h, b] for h in common}) == 1, (a, b)
    assert shared > 10
    assert len(pairs) == 36
    hub.state.chain_audit()
    assert _rows(hub, "SELECT count(*) FROM audit WHERE action = 'case_created'")[0][0] == 13
    with hub.state.session() as session:
        assert verify_chain(session).ok


async def test_a_bad_case_in_a_batch_fails_alone_and_the_others_are_stored(
    pg_hub: Hub,
) -> None:
    hub = pg_hub
    device = await hub.enroll_device()
    h1, _ = await hub.register_hospital(name="甲")
    h2, _ = await hub.register_hospital(name="乙")
    earlier = _body("g-earlier", [h2])
    r = await hub.call(device, "POST", "/v1/cases", earlier, headers={"Idempotency-Key": "k-e"})
    assert r.status_code == 201, r.text
    held = HeldWriter(hub, h1)
    first = asyncio.create_task(hub.post_case(device, [h1], case_id="g-first"))
    await until(held.waiting_on_lock, "the first case to wait on the locked row")
    bad = {
        # a recipient that is not a registered hospital
        "unknown": hub.call(
            device, "POST", "/v1/cases", _body("g-unknown", [h2, "nosuch"]),
            headers={"Idempotency-Key": "k-u"},
        ),
        # the retry of a stored case: its first answer again
        "retry": hub.call(
            device, "POST", "/v1/cases", earlier, headers={"Idempotency-Key": "k-e"}
        ),
        # a stored case id under another key
        "taken": hub.call(
            device, "POST", "/v1/cases", _body("g-earlier", [h2]),
            headers={"Idempotency-Key": "k-t"},
        ),
    }  # fmt: skip
    tasks = {name: asyncio.create_task(coro) for name, coro in bad.items()}
    good = [
        asyncio.create_task(hub.post_case(device, [h1, h2], case_id=f"g-ok-{i}")) for i in range(4)
    ]
    await until(lambda: held.queued() == 7, "7 cases queued behind the first")
    held.release()
    assert (await first).status_code == 201
    assert [(await t).status_code for t in good] == [201] * 4
    unknown, retry, taken = [await tasks[n] for n in ("unknown", "retry", "taken")]
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_recipient"
    assert retry.status_code == 201
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "case_exists"
    assert _rows(hub, "SELECT count(*) FROM cases")[0][0] == 6  # earlier, first, 4 good
    assert _rows(hub, "SELECT count(*) FROM events WHERE case_id = 'g-unknown'")[0][0] == 0
    for hid, expected in ((h1, 5), (h2, 5)):
        seqs = [
            r[0]
            for r in _rows(
                hub, "SELECT seq FROM events WHERE recipient = :r ORDER BY seq", r=f"hospital:{hid}"
            )
        ]
        assert seqs == list(range(1, expected + 1)), (hid, seqs)


async def test_a_device_revoked_while_its_case_waits_is_refused_alone(pg_hub: Hub) -> None:
    """The batch statement reads revocation itself: a device revoked after its case was
    handed to the writer gets 403 ``revoked``, and the other cases of the batch are
    stored."""
    hub = pg_hub
    device = await hub.enroll_device(name="救急甲")
    other = await hub.enroll_device(name="救急乙")
    h1, _ = await hub.register_hospital(name="丙")
    held = HeldWriter(hub, h1)
    first = asyncio.create_task(hub.post_case(device, [h1], case_id="r-first"))
    await until(held.waiting_on_lock, "the first case to wait on the locked row")
    good = [asyncio.create_task(hub.post_case(device, [h1], case_id=f"r-ok-{i}")) for i in range(3)]
    gone = asyncio.create_task(hub.post_case(other, [h1], case_id="r-revoked"))
    await until(lambda: held.queued() == 4, "4 cases queued behind the first")
    other_id = other.key_id.split(":")[1]
    r = await hub.call(hub.operator, "POST", f"/v1/devices/{other_id}/revoke", {})
    assert r.status_code == 200, r.text
    held.release()
    assert (await first).status_code == 201
    assert [(await t).status_code for t in good] == [201] * 3
    refused = await gone
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "revoked"
    stored = {row[0] for row in _rows(hub, "SELECT id FROM cases")}
    assert stored == {"r-first", "r-ok-0", "r-ok-1", "r-ok-2"}
