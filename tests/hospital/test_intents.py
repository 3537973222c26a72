"""The crew's intents through the case flow, against the real platform and real hospitals.

A ``CaseFlow`` (no card: the case starts at the vitals) talks to a hub under uvicorn
through the real ``PlatformClient`` behind a switch (``Switchable.down`` plays a lost
network); two hospitals run their receiving service and dashboard. What the hospital
finally shows is read from its dashboard page (``data-status`` of the case).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import select

from edge.flow import CaseFlow, CaseView, DeviceIdentity, Stage
from hub_server.models import AuditEntry, Case
from sync import Conflict, HttpStatusError
from sync.closure import seal_closure
from sync.envelope import envelope_to_text
from sync.outbox import Outbox
from sync.seal import seal_json
from tests.edge._world import Switchable
from tests.hospital._world import (
    SCENE,
    Device,
    HospitalSite,
    Platform,
    platform,
    signed_in,
    wait_for,
)


class _NoCardReading:
    """These cases start without a card (「カードなしで開始」): nothing is ever read."""

    def read(self, *a: Any, **kw: Any) -> Any:
        raise AssertionError("no card in these cases")


@dataclass
class World:
    p: Platform
    a: HospitalSite  # テスト中央病院
    b: HospitalSite  # テスト第二病院
    staff: dict[str, httpx.Client]  # site id -> alice signed in (a TOTP code counts once)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("intents")
    with platform(tmp) as p:
        a = p.new_hospital(tmp, "テスト中央病院", 35.685, 139.77)
        b = p.new_hospital(tmp, "テスト第二病院", 35.69, 139.75)
        staff = {}
        for site in (a, b):
            p.add_user(site, "alice")
            p.start(site)
            staff[site.id] = p.stack.enter_context(signed_in(site, "alice"))
        yield World(p, a, b, staff)


@dataclass
class Crew:
    flow: CaseFlow
    net: Switchable
    device: Device
    outbox: Outbox
    seen: list[tuple[bool, CaseView]]  # (network down at the time, view)


@pytest.fixture
def crew(world: World, tmp_path: Path) -> Iterator[Crew]:
    device = world.p.new_device()
    net = Switchable(device.client)
    net.down = False
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    flow = CaseFlow(
        cards=None,
        card_reading=_NoCardReading(),
        platform=net,
        outbox=outbox,
        device=DeviceIdentity(device.id, device.key, "テスト救急1", "テスト市消防本部"),
        base=SCENE,
        closers=[outbox.close],
    )
    seen: list[tuple[bool, CaseView]] = []
    flow.subscribe(lambda v: seen.append((net.down, v)))
    flow.start()
    assert flow.refresh_directory()  # stored while the network was up
    try:
        yield Crew(flow, net, device, outbox, seen)
    finally:
        flow.close()


def row(flow: CaseFlow, site: HospitalSite) -> Any:
    return next(h for h in flow.view().hospitals if h.id == site.id)


def start_and_send(crew: Crew, *sites: HospitalSite) -> str:
    f = crew.flow
    f.start_without_card()
    f.set_chief_complaint("胸痛")
    f.to_hospitals()
    for site in sites:
        f.toggle_hospital(site.id)
    f.send_selected()
    (case_id,) = f.sent_case_ids()
    return case_id


def dashboard_status(world: World, site: HospitalSite, case_id: str) -> tuple[str | None, str]:
    """(data-status of the case's card, its text) on the hospital's dashboard; None: absent."""
    page = world.staff[site.id].get("/")
    assert page.status_code == 200
    m = re.search(
        rf'<article[^>]*data-case-id="{re.escape(case_id)}".*?</article>', page.text, re.S
    )
    if m is None:
        return None, ""
    status = re.search(r'data-status="([^"]+)"', m.group(0))
    assert status, m.group(0)
    return status.group(1), m.group(0)


def decline_on_dashboard(world: World, site: HospitalSite, case_id: str, reason: str) -> None:
    c = world.staff[site.id]
    page = c.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = c.post(
        f"/cases/{case_id}/answer",
        data={"reason": reason, "csrf": csrf.group(1)},
        headers={"X-Requested-With": "fetch"},
    )
    assert r.status_code == 200, r.text


def hub_audit(world: World, action: str, case_id: str) -> list[dict[str, Any]]:
    with world.p.hub.state.session() as s:
        rows = s.exec(
            select(AuditEntry).where(
                AuditEntry.action == action, AuditEntry.subject == f"case:{case_id}"
            )
        ).all()
    return [json.loads(r.details) for r in rows]


def hub_has(world: World, case_id: str) -> bool:
    with world.p.hub.state.session() as s:
        return s.get(Case, case_id) is not None


def never_sent_while_down(crew: Crew) -> None:
    """No view made while the network was down claimed 送信済み (only a 201 can)."""
    for down, v in crew.seen:
        if not down:
            continue
        assert v.notice is None or v.notice.code != "sent", v.notice
        assert v.notice is None or "送信済み" not in v.notice.text.ja
        assert all(h.delivery != "sent" for h in v.hospitals), v.hospitals


# -- destination only among 受入可, or by phone -------------------------------------------


def test_declined_hospital_refused_then_chosen_by_phone(world: World, crew: Crew) -> None:
    f = crew.flow
    case_id = start_and_send(crew, world.a, world.b)
    # The platform answers 201 first (送信済み), then each hospital has it (病院に到着).
    wait_for(lambda: row(f, world.a).delivery == "received", what="received at A")
    assert f.view().notice is not None
    assert f.view().notice.code == "sent"
    assert dashboard_status(world, world.a, case_id)[0] == "waiting"

    decline_on_dashboard(world, world.a, case_id, "満床")
    wait_for(lambda: row(f, world.a).answer == "decline", what="the decline on the device")
    assert row(f, world.a).reason == "満床"  # 受入不可（満床） on the ambulance

    # Neither the flow nor the platform take a declined hospital "by its answer".
    assert not f.confirm_destination(world.a.id)
    v = f.view()
    assert v.stage is Stage.HOSPITALS
    assert v.destination is None
    assert v.notice is not None
    assert v.notice.code == "not_accepted"
    assert "電話で受入確認済み" in v.notice.text.ja
    with pytest.raises(Conflict) as refused:
        crew.device.client.set_destination(case_id, world.a.id)
    assert refused.value.hub_code == "not_accepted"
    # A hospital the case was never sent to: refused whatever the crew says.
    other = world.p.new_hospital(crew.outbox.path.parent, "テスト第三病院", 35.7, 139.7)
    with pytest.raises(HttpStatusError) as stranger:
        crew.device.client.set_destination(case_id, other.id, via="phone")
    assert stranger.value.status == 422
    assert stranger.value.hub_code == "not_a_recipient"
    assert dashboard_status(world, world.a, case_id)[0] == "declined"

    # After the phone call: chosen, recorded, audited and shown as such.
    assert f.confirm_destination(world.a.id, via="phone")
    v = f.view()
    assert v.stage is Stage.CONFIRMED
    assert v.destination_via == "phone"
    wait_for(lambda: f.view().destination_state == "delivered", what="destination sent")
    wait_for(lambda: dashboard_status(world, world.a, case_id)[0] == "destination-phone", what="A")
    _, card = dashboard_status(world, world.a, case_id)
    assert "搬送先決定（電話確認）" in card
    wait_for(lambda: dashboard_status(world, world.b, case_id)[0] == "elsewhere", what="B told")
    assert hub_audit(world, "destination_confirmed", case_id) == [
        {"hospital_id": world.a.id, "via": "phone"}
    ]


def test_accepted_hospital_is_chosen_by_its_answer(world: World, crew: Crew) -> None:
    f = crew.flow
    case_id = start_and_send(crew, world.b)
    wait_for(lambda: row(f, world.b).delivery == "received", what="received at B")
    rb = world.b.runtime
    assert rb is not None
    rb.service.answer(case_id, "accept", None, by="alice")
    wait_for(lambda: row(f, world.b).answer == "accept", what="the accept")
    assert f.confirm_destination(world.b.id)
    wait_for(lambda: dashboard_status(world, world.b, case_id)[0] == "destination", what="B chosen")
    assert hub_audit(world, "destination_confirmed", case_id) == [
        {"hospital_id": world.b.id, "via": "answer"}
    ]


# -- 中止 / 不搬送 from three stages --------------------------------------------------------


def test_abort_before_anything_was_sent(world: World, crew: Crew) -> None:
    f = crew.flow
    f.start_without_card()
    f.set_chief_complaint("外傷")
    f.to_hospitals()
    f.toggle_hospital(world.a.id)
    f.abort("軽症・自力受診")
    v = f.view()
    assert v.stage is Stage.STANDBY
    assert not v.case_open
    assert v.chief_complaint is None
    assert v.notice is not None
    assert v.notice.code == "aborted"
    assert "何も送信していません" in v.notice.text.ja
    assert crew.outbox.pending_count() == 0


@pytest.mark.parametrize(
    ("stage", "reason"),
    [("waiting", "搬送拒否"), ("answered", "現場死亡確認")],
)
def test_abort_after_sending_closes_the_case_at_every_hospital(
    world: World, crew: Crew, stage: str, reason: str
) -> None:
    f = crew.flow
    case_id = start_and_send(crew, world.a, world.b)
    wait_for(lambda: row(f, world.b).delivery == "received", what="received at B")
    if stage == "answered":
        decline_on_dashboard(world, world.b, case_id, "専門外")
        wait_for(lambda: row(f, world.b).answer == "decline", what="the answer")
    f.abort(reason)
    v = f.view()
    assert v.stage is Stage.STANDBY
    assert not v.case_open
    assert v.hospitals == () or not any(h.sent for h in v.hospitals)
    assert v.notice is not None
    assert v.notice.code == "aborted"
    assert reason in v.notice.text.ja
    for site in (world.a, world.b):
        wait_for(lambda s=site: dashboard_status(world, s, case_id)[0] == "closed", what=site.name)
        _, card = dashboard_status(world, site, case_id)
        assert f"中止（{reason}）" in card
        assert 'class="answer"' not in card  # nothing left to answer
    assert hub_audit(world, "case_closed", case_id) == [{"recipients": 2}]
    # The reason travelled sealed: the platform holds no readable trace of it.
    with world.p.hub.state.session() as s:
        audit = " ".join(r.details for r in s.exec(select(AuditEntry)).all())
    assert reason not in audit
    # A second closure of the same case: refused (409), the hospitals see one.
    again = seal_closure(
        case_id=case_id,
        reason="その他",
        closed_at=datetime.now(UTC),
        device_id=crew.device.id,
        device_key=crew.device.key,
        recipients={
            h.id: h.hpke_public_key
            for h in crew.device.client.hospital_directory(*SCENE)
            if h.id in (world.a.id, world.b.id)
        },
    )
    with pytest.raises(Conflict) as closed:
        crew.device.client.post_closure(case_id, [world.a.id, world.b.id], again)
    assert closed.value.hub_code == "case_closed"


# -- the offline matrix -------------------------------------------------------------------

# Each row: the steps the crew takes, and from which step on the network is cut (None:
# never). The network comes back after the last step; the hospital then shows:
STEPS = {
    "send": ("send",),
    "send+destination": ("send", "destination"),
    "send+abort": ("send", "abort"),
    "send+destination+abort": ("send", "destination", "abort"),
}


def _expected(steps: tuple[str, ...], cut: int | None) -> str | None:
    if "abort" in steps:
        # Sealed but never sent when the crew ended it: nothing reaches any hospital.
        return None if cut == 0 else "closed"
    if "destination" in steps:
        return "destination-phone"  # no answer offline: chosen after a phone call
    return "waiting"


MATRIX = [
    (name, cut)
    for name, steps in STEPS.items()
    for cut in (*range(len(steps)), None)
    if not (name == "send" and cut is None)  # the plain send: covered above
]


@pytest.mark.parametrize(("name", "cut"), MATRIX, ids=[f"{n}-cut{c}" for n, c in MATRIX])
def test_offline_matrix(world: World, crew: Crew, name: str, cut: int | None) -> None:
    f = crew.flow
    steps = STEPS[name]
    case_id = ""
    for i, step in enumerate(steps):
        if cut == i:
            crew.net.down = True
        if step == "send":
            case_id = start_and_send(crew, world.a)
            if crew.net.down:
                v = f.view()
                assert v.notice is not None
                assert v.notice.code == "queued"  # 未送信（封緘して保存）, never 送信済み
                assert row(f, world.a).delivery == "queued"
            else:
                wait_for(lambda: row(f, world.a).delivery == "received", what="received")
        elif step == "destination":
            assert f.confirm_destination(world.a.id, via="phone")
            if crew.net.down:
                assert f.view().destination_state == "pending"  # 送信待ち
                if steps[-1] == "destination":
                    f.finish()  # 事案終了 offline: the destination still leaves later
                    v = f.view()
                    assert v.notice is not None
                    assert "通信回復後" in v.notice.text.ja
            else:
                wait_for(lambda: f.view().destination_state == "delivered", what="destination")
        elif step == "abort":
            f.abort("誤報・取消")
            assert f.view().stage is Stage.STANDBY
    never_sent_while_down(crew)
    crew.net.down = False
    wait_for(lambda: crew.outbox.pending_count() == 0, timeout=90, what="the outbox drained")
    want = _expected(steps, cut)
    if want is None:
        assert not hub_has(world, case_id)  # discarded on the device, never posted
        assert dashboard_status(world, world.a, case_id)[0] is None
        return
    wait_for(
        lambda: dashboard_status(world, world.a, case_id)[0] == want,
        timeout=60,
        what=f"{want} at A",
    )
    if want == "closed":
        assert "中止（誤報・取消）" in dashboard_status(world, world.a, case_id)[1]


# -- a garbled closure never stops a hospital's stream ------------------------------------


def _closure_text(crew: Crew, site: HospitalSite, case_id: str, **kw: Any) -> str:
    directory = {h.id: h for h in crew.device.client.hospital_directory(*SCENE)}
    args: dict[str, Any] = {
        "case_id": case_id,
        "reason": "搬送拒否",
        "closed_at": datetime.now(UTC),
        "device_id": crew.device.id,
        "device_key": crew.device.key,
        "recipients": {site.id: directory[site.id].hpke_public_key},
    }
    args.update(kw)
    return envelope_to_text(seal_closure(**args))


def _sealed_doc(crew: Crew, site: HospitalSite, case_id: str, doc: Any) -> bytes:
    directory = {h.id: h for h in crew.device.client.hospital_directory(*SCENE)}
    return seal_json(
        doc,
        case_id=case_id,
        device_id=crew.device.id,
        device_key=crew.device.key,
        recipients={site.id: directory[site.id].hpke_public_key},
    )


# Garbled on the wire (the platform never relays these; an event arrives damaged).
FORGED = {
    "not_base64": lambda crew, site, cid: {"envelope": "%%%"},
    "no_envelope": lambda crew, site, cid: {},
    "envelope_number": lambda crew, site, cid: {"envelope": 7},
    "other_case": lambda crew, site, cid: {
        "envelope": _closure_text(crew, site, "case-someone-else")
    },
    "other_device": lambda crew, site, cid: {
        "envelope": _closure_text(crew, site, cid, device_key=Ed25519PrivateKey.generate())
    },
    "unknown_case": lambda crew, site, cid: {
        "case_id": "case-unknown",
        "envelope": _closure_text(crew, site, cid),
    },
    "case_id_number": lambda crew, site, cid: {
        "case_id": 12,
        "envelope": _closure_text(crew, site, cid),
    },
}
# Sealed and signed by the device that sent the case, relayed by the platform (which
# cannot read them), but not a closure the hospital can act on.
RELAYED = {
    "unknown_reason": {"type": "closure", "case_id": "", "reason": "飽きた", "closed_at": ""},
    "a_case_not_a_closure": {"resourceType": "Bundle", "type": "collection"},
    "no_time": {"type": "closure", "case_id": "", "reason": "搬送拒否"},
    "not_an_object": ["closure"],
}


@pytest.mark.parametrize("garble", [*FORGED, *RELAYED])
def test_garbled_closure_is_recorded_and_the_stream_goes_on(
    world: World, crew: Crew, garble: str
) -> None:
    from httpx_sse import ServerSentEvent

    from hospital.main import HospitalRuntime

    site = world.p.new_hospital(crew.outbox.path.parent, "テスト検証病院", 35.686, 139.771)
    case_id = crew.device.send([site.id])
    rt = HospitalRuntime(site.settings())  # not served: the test drives the receiver
    try:
        service = rt.service
        stop = threading.Event()

        def read_until(done: Any) -> None:
            for sse in service.client.events(service.state.last_event, stop):
                service.receiver.handle(sse)
                if done():
                    return

        read_until(lambda: rt.store.case(case_id) is not None)
        before = len(rt.store.rejections())
        if garble in FORGED:
            # The platform's next event for this hospital (a case) arrives garbled, as a
            # closure: it is handled in its place.
            crew.device.send([site.id])
            seq = service.state.last_event + 1
            data: dict[str, Any] = {"type": "closure", "case_id": case_id}
            data.update(FORGED[garble](crew, site, case_id))
            data["seq"] = seq
            service.receiver.handle(ServerSentEvent("closure", json.dumps(data), str(seq)))
            assert service.state.last_event == seq  # recorded and passed, not read again
        else:
            doc = RELAYED[garble]
            if isinstance(doc, dict) and "case_id" in doc:
                doc = {**doc, "case_id": case_id}
                if "closed_at" in doc:
                    doc["closed_at"] = datetime.now(UTC).isoformat()
            crew.device.client.post_closure(
                case_id, [site.id], _sealed_doc(crew, site, case_id, doc)
            )
            read_until(lambda: len(rt.store.rejections()) > before)
        assert rt.store.closures([case_id]) == {}
        codes = [r.code for r in rt.store.rejections()]
        assert len(codes) == before + 1
        assert codes[-1].startswith("closure:")
        # The next case still arrives.
        nxt = crew.device.send([site.id])
        read_until(lambda: rt.store.case(nxt) is not None)
    finally:
        rt.close()
