"""The disaster route end to end on real processes (docs/disaster.md).

The platform (``kyukyu hub serve``), three hospital services (``kyukyu hospital serve``
with their direct endpoint over HTTPS), two devices (``sync.Sender`` with the direct
route). The platform is killed with kill -9 mid-run; the cases sent meanwhile reach their
hospitals directly and are answered there; the platform comes back; after reconciliation
each case exists once on the platform and once per recipient hospital, the audit chain
verifies and the outboxes are empty. A device destroyed during the outage leaves its case
at the hospitals, which hand it in to the platform: stored there once too. The
unreachable threshold is 1 s here (60 s by default); every wait is on a condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kyukyu.testing import DisasterWorld, wait_for

pytestmark = pytest.mark.slow

T = 60.0  # generous: a loaded 2-core machine


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DisasterWorld]:
    w = DisasterWorld(tmp_path / "world")
    try:
        w.start(hospitals=3, devices=2, unreachable_seconds=1.0)
        yield w
    finally:
        w.close()


def _hub_answer(world: DisasterWorld, device: object, case_id: str) -> dict[str, str | None]:
    status = device.client.http.request_json("GET", f"/v1/cases/{case_id}")  # type: ignore[attr-defined]
    return {r["hospital_id"]: r["answer"] for r in status["recipients"]}


def test_cases_reach_hospitals_directly_and_reconcile_once(world: DisasterWorld) -> None:
    a, b, c = world.hospitals
    d1, d2 = world.devices

    # The platform up: a case goes its usual way.
    before = d1.send([a.id, b.id])
    assert wait_for(lambda: d1.pending() == 0, T)
    assert d1.route(before) == "platform"
    assert wait_for(lambda: len(a.rows(before)) == 1, T)

    world.kill_hub()  # kill -9, mid-run

    c1 = d1.send([a.id, b.id])
    c2 = d2.send([b.id, c.id])
    c3 = d2.send([a.id, c.id])
    sent = {c1: (d1, [a.id, b.id]), c2: (d2, [b.id, c.id]), c3: (d2, [a.id, c.id])}
    for case_id, (dev, recipients) in sent.items():
        want = set(recipients)
        assert wait_for(lambda d=dev, i=case_id, w=want: d.direct_done(i) >= w, T), case_id
        assert dev.route(case_id) == "direct"
    by_id = {h.id: h for h in world.hospitals}
    for case_id, (_, recipients) in sent.items():
        for hid in recipients:
            assert by_id[hid].rows(case_id) == [("direct", None, 0)]

    # 受入可 / 受入不可 without the platform: given on the dashboard, read by the device.
    with a.staff() as staff_a, c.staff() as staff_c:
        staff_a.answer(c1, "accept")
        staff_c.answer(c2, "decline", "満床")
    assert wait_for(lambda: d1.answers(c1).get(a.id) == "accept", T)
    assert wait_for(lambda: d2.answers(c2).get(c.id) == "decline", T)
    assert d1.answers(c1).get(b.id) == "received"  # 病院に到着, from the direct post

    # 搬送先決定 and 中止 take the direct route too, in order after their case.
    d1.destination(c1, a.id, [a.id, b.id])
    d2.close_case(c3, [a.id, c.id])
    assert wait_for(lambda: d1.direct_done(c1, "destination") >= {a.id, b.id}, T)
    assert wait_for(lambda: d2.direct_done(c3, "closure") >= {a.id, c.id}, T)
    assert a.outcome(c1) == ("chosen", 0)  # 搬送先決定, told directly
    assert b.outcome(c1) == ("elsewhere", 0)  # 他院へ搬送
    assert a.outcome(c3) == (None, 1)  # 中止 / 不搬送, told directly
    assert c.outcome(c3) == (None, 1)

    world.start_hub()  # the platform returns (same database, same key)

    # Reconciliation: every outbox empties into the platform (same ids and keys).
    assert wait_for(lambda: d1.pending() == 0 and d2.pending() == 0, T), (
        d1.outbox.waiting(),
        d2.outbox.waiting(),
    )
    # The hospitals give the platform the answers it missed.
    assert wait_for(lambda: a.rows(c1)[0][2] == 0 and c.rows(c2)[0][2] == 0, T)
    assert wait_for(lambda: _hub_answer(world, d1, c1).get(a.id) == "accept", T)
    assert wait_for(lambda: _hub_answer(world, d2, c2).get(c.id) == "decline", T)

    for case_id, (_, recipients) in {**sent, before: (d1, [a.id, b.id])}.items():
        assert world.platform_cases(case_id) == 1
        for hid in recipients:
            assert len(by_id[hid].rows(case_id)) == 1  # once per recipient hospital
    for case_id in sent:
        assert [d.get("route") for d in world.audit_details(case_id)] == ["direct"]
    # The platform's relays of the same intents changed nothing (told once, shown once).
    assert a.outcome(c1) == ("chosen", 0)
    assert a.outcome(c3) == (None, 1)
    assert c.outcome(c3) == (None, 1)
    assert [d.get("route") for d in world.audit_details(before)] == [None]
    assert world.audit_verifies()

    # A revoked device is refused on the direct route too, once the roster says so.
    world.operator.request_json("POST", f"/v1/devices/{d2.id}/revoke", body={})
    assert wait_for(
        lambda: any(x["id"] == d2.id and x["revoked"] for x in a.roster().get("devices", [])), T
    )
    from sync import HttpStatusError
    from sync.outbox import PendingCase

    refused = d2.send([a.id])
    row = d2.outbox.get(refused)
    assert isinstance(row, PendingCase)
    with pytest.raises(HttpStatusError) as info:
        d2.direct.clients[a.id].post(row)
    assert info.value.status == 403
    assert a.rows(refused) == []


def test_a_hospital_down_during_the_outage_gets_its_case_later_once(
    world: DisasterWorld,
) -> None:
    a, b, c = world.hospitals
    (d1, d2) = world.devices
    c.stop()
    world.kill_hub()

    case_id = d1.send([a.id, c.id])
    assert wait_for(lambda: a.id in d1.direct_done(case_id), T)
    assert c.id not in d1.direct_done(case_id)  # its hospital is down too: the case waits

    # Meanwhile a device delivers a case directly and is destroyed: it never reconnects.
    lost = d2.send([a.id, b.id])
    assert wait_for(lambda: d2.direct_done(lost) >= {a.id, b.id}, T)
    world.lose_device(d2)

    world.start_hub()
    # Both recipients hand the lost device's case in: the platform stores it once, with
    # its route and who reported it, in the one audit chain.
    assert wait_for(lambda: a.report(lost) is not None and b.report(lost) is not None, T), (
        a.tail(),
        b.tail(),
    )
    assert {a.report(lost), b.report(lost)} <= {"reported", "platform"}
    assert world.platform_cases(lost) == 1
    [audited] = world.audit_details(lost)
    assert audited["route"] == "direct"
    assert audited["reported_by"] in {a.id, b.id}
    assert a.rows(lost) == [("direct", None, 0)]  # each hospital has it once
    assert b.rows(lost) == [("direct", None, 0)]
    assert wait_for(lambda: d1.pending() == 0, T)  # the platform has it now
    c.start()
    assert wait_for(lambda: len(c.rows(case_id)) == 1, T)
    assert c.rows(case_id)[0][0] == "platform"  # it came the platform's way, once
    assert len(a.rows(case_id)) == 1
    assert world.platform_cases(case_id) == 1
    assert world.audit_verifies()
