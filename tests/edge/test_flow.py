"""The case flow against the virtual card and a real hub: every transition, every failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.card_sim import Quirks, VirtualCard
from edge.flow import CaseFlow, Consent, IdentityMethod, Stage
from edge.jpki.revocation import RevocationSnapshot
from tests.edge._world import PIN, Switchable, TapReader, World, make_flow, wait_until


@pytest.fixture
def reader() -> TapReader:
    return TapReader()


@pytest.fixture
def flow(world: World, tmp_path: Path, reader: TapReader) -> Iterator[CaseFlow]:
    f = make_flow(world, tmp_path, cards=reader)
    yield f
    f.close()


def tap(flow: CaseFlow, reader: TapReader, card: VirtualCard) -> None:
    reader.tap(card)
    assert flow.wait_for_card(timeout=10)


def test_conscious_face_check_full_case(
    world: World, flow: CaseFlow, reader: TapReader, tmp_path: Path
) -> None:
    stages: list[Stage] = []
    flow.subscribe(lambda v: stages.append(v.stage))
    image = world.patient()
    tap(flow, reader, VirtualCard(image))
    v = flow.view()
    assert v.stage is Stage.CONSENT
    assert v.case_open
    assert v.card_used
    assert v.token_type == "card"
    assert v.progress[:2] == ("token", "certificate")
    assert Stage.READING in stages
    assert v.identity_options == (
        IdentityMethod.FACE,
        IdentityMethod.PIN,
        IdentityMethod.COLLATION_B,
    )

    flow.choose_consent(Consent.CONSENTED)
    assert flow.view().stage is Stage.IDENTITY
    flow.choose_identity(IdentityMethod.FACE)
    v = flow.view()
    assert v.stage is Stage.SUMMARY
    assert Stage.LOOKING_UP in stages
    assert v.summary_status == "found"
    assert v.assurance == "face_check"
    assert v.consent is Consent.CONSENTED
    assert [s.key for s in v.summary][:2] == ["allergies", "conditions"]
    assert v.patient_label is None  # face check: no attributes read

    flow.to_vitals()
    flow.set_chief_complaint("胸痛")
    flow.set_vital("systolic", 300)  # out of range: kept and flagged
    flow.set_vital("diastolic", 60)
    flow.set_vital("pulse", 118)
    flow.set_vital("jcs", "1")
    v = flow.view()
    assert v.stage is Stage.VITALS
    assert v.chief_complaint == "胸痛"
    assert v.vitals[0].systolic == 300
    assert v.vitals[0].flagged() == ("systolic",)

    flow.to_hospitals()
    v = flow.view()
    assert v.stage is Stage.HOSPITALS
    dists = [h.distance_km for h in v.hospitals]
    assert dists == sorted(dists)  # nearest first
    first, second, _ = v.hospitals
    flow.toggle_hospital(first.id)
    flow.toggle_hospital(second.id)
    flow.send_selected()
    v = flow.view()
    assert {h.id for h in v.hospitals if h.sent} == {first.id, second.id}
    (case_id,) = flow.sent_case_ids()
    wait_until(lambda: flow.view().waiting_sealed == 0, what="delivery")

    by_id = {h.id: h for h in world.hospitals}
    with (
        world.hospital_client(by_id[first.id]) as c1,
        world.hospital_client(by_id[second.id]) as c2,
    ):
        c1.answer(case_id, "decline", "満床")
        c2.answer(case_id, "accept")
    wait_until(
        lambda: {h.answer for h in flow.view().hospitals if h.sent} == {"accept", "decline"},
        what="live answers",
    )
    # The one that declined cannot be chosen by its answer; nothing changes.
    assert not flow.confirm_destination(first.id)
    v = flow.view()
    assert v.stage is Stage.HOSPITALS
    assert v.destination is None
    assert v.notice is not None
    assert v.notice.code == "not_accepted"
    assert next(h for h in v.hospitals if h.id == first.id).reason == "満床"
    assert flow.confirm_destination(second.id)
    v = flow.view()
    assert v.stage is Stage.CONFIRMED
    assert v.destination == second.id
    assert v.destination_via == "answer"
    # 送信待ち until the platform has it, then said so.
    wait_until(lambda: flow.view().destination_state == "delivered", what="destination sent")
    v = flow.view()
    assert v.notice is not None
    assert v.notice.code == "destination_sent"

    flow.finish()
    v = flow.view()
    assert v.stage is Stage.STANDBY
    assert not v.case_open
    assert v.summary == ()
    assert v.vitals == ()
    assert v.chief_complaint is None
    assert v.notice is not None
    assert v.notice.code == "forgotten"

    # Nothing readable about the patient on the device's disk.
    holder = image.holder
    for f in tmp_path.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            for secret in (holder.name, holder.address, "胸痛"):
                assert secret.encode() not in blob, f


def test_unconscious_goes_to_the_summary_in_one_intent(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    tap(flow, reader, VirtualCard(world.patient()))
    flow.choose_consent(Consent.UNCONSCIOUS)
    v = flow.view()
    assert v.stage is Stage.SUMMARY
    assert v.summary_status == "found"
    assert v.consent is Consent.UNCONSCIOUS


def test_refused_shows_nothing(world: World, flow: CaseFlow, reader: TapReader) -> None:
    tap(flow, reader, VirtualCard(world.patient()))
    flow.choose_consent(Consent.REFUSED)
    v = flow.view()
    assert v.stage is Stage.VITALS
    assert v.summary_status == "refused"
    assert v.summary == ()
    assert v.notice is not None
    flow.show_summary()  # there is nothing to show: the summary screen shows "refused"
    assert flow.view().summary == ()


def test_pin_wrong_then_last_try_confirmed(world: World, flow: CaseFlow, reader: TapReader) -> None:
    tap(flow, reader, VirtualCard(world.patient()))
    flow.choose_consent(Consent.CONSENTED)
    flow.choose_identity(IdentityMethod.PIN)
    assert flow.view().stage is Stage.PIN
    flow.submit_pin("9999")
    v = flow.view()
    assert v.stage is Stage.PIN
    assert v.pin_tries_left == 2
    assert v.notice is not None
    assert "2" in v.notice.text.ja
    flow.submit_pin("9998")
    assert flow.view().pin_tries_left == 1
    flow.submit_pin(PIN)  # the last try needs a confirmation first
    v = flow.view()
    assert v.stage is Stage.PIN
    assert v.pin_needs_confirmation
    flow.submit_pin(PIN, confirm_last_try=True)
    v = flow.view()
    assert v.stage is Stage.SUMMARY, v.notice
    assert v.assurance == "card_signature"
    assert v.summary_status == "found"


def test_pin_blocked_falls_back_to_face_check(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    tap(flow, reader, VirtualCard(world.patient()))
    flow.choose_consent(Consent.CONSENTED)
    flow.choose_identity(IdentityMethod.PIN)
    flow.submit_pin("0000")
    flow.submit_pin("0001")
    flow.submit_pin("0002")
    flow.submit_pin("0003", confirm_last_try=True)
    v = flow.view()
    assert v.stage is Stage.IDENTITY
    assert IdentityMethod.PIN not in v.identity_options
    assert v.notice is not None
    assert v.notice.code == "pin_blocked"
    flow.choose_identity(IdentityMethod.FACE)
    assert flow.view().stage is Stage.SUMMARY


def test_collation_b_reads_verified_attributes(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    image = world.patient()
    tap(flow, reader, VirtualCard(image))
    flow.choose_consent(Consent.CONSENTED)
    flow.choose_identity(IdentityMethod.COLLATION_B)
    assert flow.view().stage is Stage.COLLATION_B
    flow.submit_collation_b("12345")  # malformed: said so, stays
    v = flow.view()
    assert v.stage is Stage.COLLATION_B
    assert v.notice is not None
    flow.cancel_identity()
    assert flow.view().stage is Stage.IDENTITY
    flow.choose_identity(IdentityMethod.COLLATION_B)
    flow.submit_collation_b(image.collation_b)
    v = flow.view()
    assert v.stage is Stage.SUMMARY, v.notice
    assert v.assurance == "collation_b_device_attested"
    assert v.patient_label is not None
    assert image.holder.name in v.patient_label


def test_card_removed_mid_read_then_retap(world: World, flow: CaseFlow, reader: TapReader) -> None:
    tap(flow, reader, VirtualCard(world.patient(), Quirks(remove_after_apdus=3)))
    v = flow.view()
    assert v.stage is Stage.CARD_PROBLEM
    assert v.notice is not None
    assert v.notice.code == "card_removed"
    flow.retap()
    assert flow.view().stage is Stage.STANDBY
    assert flow.view().case_open
    tap(flow, reader, VirtualCard(world.patient()))
    assert flow.view().stage is Stage.CONSENT


def test_card_removed_before_pin_proof_resumes_at_identity(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    card = VirtualCard(world.patient())
    tap(flow, reader, card)
    flow.choose_consent(Consent.CONSENTED)
    card.remove()
    flow.choose_identity(IdentityMethod.PIN)
    flow.submit_pin(PIN)
    assert flow.view().stage is Stage.CARD_PROBLEM
    flow.retap()
    tap(flow, reader, VirtualCard(world.patient()))
    assert flow.view().stage is Stage.IDENTITY  # consent is not asked twice
    flow.choose_identity(IdentityMethod.PIN)
    flow.submit_pin(PIN)
    assert flow.view().stage is Stage.SUMMARY


def test_not_a_my_number_card(world: World, flow: CaseFlow, reader: TapReader) -> None:
    from edge.reader import LoopbackConnection

    class Stranger:
        def power_on(self) -> bytes:
            return b"\x3b\x00"

        def process(self, apdu: bytes) -> bytes:
            return b"\x6a\x82"  # file not found for everything

    class StrangeReader(TapReader):
        def wait_for_card(self, **kw: Any) -> Any:
            return LoopbackConnection(Stranger())

    f = make_flow(world, Path(flow._outbox.path).parent / "x", cards=StrangeReader())  # type: ignore[attr-defined]
    try:
        assert f.wait_for_card(timeout=5)
        v = f.view()
        assert v.stage is Stage.CARD_PROBLEM
        assert v.notice is not None
        assert v.notice.code == "not_my_number_card"
        f.back_to_case()
        assert f.view().stage is Stage.VITALS
    finally:
        f.close()


def test_android_needs_the_pin(world: World, flow: CaseFlow, reader: TapReader) -> None:
    tap(flow, reader, VirtualCard(world.card("android")))
    v = flow.view()
    assert v.stage is Stage.CONSENT
    assert v.token_type == "android"
    assert v.identity_options == (IdentityMethod.PIN,)
    assert v.notice is not None
    flow.choose_consent(Consent.CONSENTED)
    assert flow.view().stage is Stage.PIN
    flow.submit_pin(PIN)
    v = flow.view()
    assert v.stage is Stage.SUMMARY, v.notice
    assert v.assurance == "card_signature"
    assert v.summary_status == "not_found"  # not a seeded patient


def test_android_unconscious_goes_on_without_summary(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    tap(flow, reader, VirtualCard(world.card("android")))
    flow.choose_consent(Consent.UNCONSCIOUS)
    v = flow.view()
    assert v.stage is Stage.VITALS
    assert v.summary_status == "none"


def test_iphone_is_read_like_the_card(world: World, flow: CaseFlow, reader: TapReader) -> None:
    tap(flow, reader, VirtualCard(world.card("iphone")))
    v = flow.view()
    assert v.stage is Stage.CONSENT
    assert v.token_type == "iphone"
    assert v.identity_options == (IdentityMethod.FACE, IdentityMethod.PIN)
    flow.choose_consent(Consent.CONSENTED)
    flow.choose_identity(IdentityMethod.FACE)
    assert flow.view().stage is Stage.SUMMARY


def test_expired_certificate_goes_on_without_summary(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    past = datetime.now(UTC) - timedelta(days=400)
    image = world.card(not_before=past, not_after=past + timedelta(days=30))
    tap(flow, reader, VirtualCard(image))
    v = flow.view()
    assert v.stage is Stage.VITALS
    assert v.notice is not None
    assert v.notice.code == "certificate_expired"
    assert "有効期限" in v.notice.text.ja
    assert "サマリーなし" in v.notice.text.ja


def test_revoked_certificate_goes_on_without_summary(
    world: World, tmp_path: Path, reader: TapReader
) -> None:
    from cryptography import x509

    image = world.card()
    serial = x509.load_der_x509_certificate(image.auth_certificate_der).serial_number
    f = make_flow(
        world, tmp_path, cards=reader, revocation=RevocationSnapshot.from_serials([serial])
    )
    try:
        tap(f, reader, VirtualCard(image))
        v = f.view()
        assert v.stage is Stage.VITALS
        assert v.notice is not None
        assert v.notice.code == "certificate_revoked"
    finally:
        f.close()


def test_no_card_first_then_a_card_later(world: World, flow: CaseFlow, reader: TapReader) -> None:
    waiter = threading.Thread(target=flow.wait_for_card)
    waiter.start()
    wait_until(reader.waiting.is_set, what="waiting for a card")
    flow.start_without_card()  # cancels the wait
    waiter.join(5)
    assert not waiter.is_alive()
    v = flow.view()
    assert v.stage is Stage.VITALS
    assert v.case_open
    assert not v.card_used
    flow.set_chief_complaint("意識障害")
    flow.set_vital("spo2", 88)
    flow.take_card()
    assert flow.view().stage is Stage.STANDBY
    tap(flow, reader, VirtualCard(world.patient()))
    flow.choose_consent(Consent.UNCONSCIOUS)
    assert flow.view().stage is Stage.SUMMARY
    flow.to_vitals()
    v = flow.view()
    assert v.chief_complaint == "意識障害"
    assert v.vitals[0].spo2 == 88


def test_no_card_case_goes_to_the_hospitals(world: World, flow: CaseFlow) -> None:
    flow.start_without_card()
    flow.set_chief_complaint("外傷")
    flow.to_hospitals()
    v = flow.view()
    flow.toggle_hospital(v.hospitals[0].id)
    flow.send_selected()
    assert len(flow.sent_case_ids()) == 1
    wait_until(lambda: flow.view().waiting_sealed == 0, what="delivery")


def test_platform_unreachable_queues_sealed_and_sends_later(
    world: World, tmp_path: Path, reader: TapReader
) -> None:
    real = world.platform()
    platform = Switchable(real)
    platform.down = False
    f = make_flow(world, tmp_path, cards=reader, platform=platform)
    try:
        assert f.refresh_directory()  # cached while the network was up
        platform.down = True
        tap(f, reader, VirtualCard(world.patient()))
        f.choose_consent(Consent.CONSENTED)
        f.choose_identity(IdentityMethod.PIN)
        f.submit_pin(PIN)  # the PIN proof needs the platform's challenge
        v = f.view()
        assert v.stage is Stage.IDENTITY
        assert v.notice is not None
        f.choose_identity(IdentityMethod.FACE)
        v = f.view()
        assert v.stage is Stage.SUMMARY
        assert v.summary_status == "unavailable"
        assert v.network_ok is False
        assert v.notice is not None
        f.to_vitals()
        f.to_hospitals()
        h = f.view().hospitals[0]
        f.toggle_hospital(h.id)
        f.send_selected()
        v = f.view()
        assert v.waiting_sealed == 1
        assert v.notice is not None
        assert "封緘" in v.notice.text.ja
        (case_id,) = f.sent_case_ids()
        platform.down = False
        wait_until(lambda: f.view().waiting_sealed == 0, timeout=20, what="sent after recovery")
        assert f.view().platform_ok is True
        by_id = {x.id: x for x in world.hospitals}
        with world.hospital_client(by_id[h.id]) as c:
            c.answer(case_id, "accept")
        wait_until(lambda: f.view().hospitals[0].answer == "accept", what="answer")
    finally:
        f.close()
        real.close()


def test_all_decline_then_resend_to_others(world: World, flow: CaseFlow) -> None:
    flow.start_without_card()
    flow.to_hospitals()
    first, _second, third = flow.view().hospitals
    flow.toggle_hospital(first.id)
    flow.send_selected()
    (case1,) = flow.sent_case_ids()
    wait_until(lambda: flow.view().waiting_sealed == 0, what="delivery")
    by_id = {x.id: x for x in world.hospitals}
    with world.hospital_client(by_id[first.id]) as c:
        c.answer(case1, "decline", "専門外")
    wait_until(lambda: flow.view().notice is not None and "再送信" in flow.view().notice.text.ja)
    flow.toggle_hospital(first.id)  # already sent: not toggled
    flow.toggle_hospital(third.id)
    flow.send_selected()
    ids = flow.sent_case_ids()
    assert len(ids) == 2
    v = flow.view()
    assert {h.id for h in v.hospitals if h.sent} == {first.id, third.id}
    wait_until(lambda: flow.view().waiting_sealed == 0, what="second delivery")
    with world.hospital_client(by_id[third.id]) as c:
        c.answer(ids[1], "accept")
    wait_until(lambda: {h.id: h.answer for h in flow.view().hospitals}[third.id] == "accept")
    flow.confirm_destination(third.id)
    assert flow.view().stage is Stage.CONFIRMED


def test_send_with_nothing_selected_says_so(world: World, flow: CaseFlow) -> None:
    flow.start_without_card()
    flow.to_hospitals()
    flow.send_selected()
    v = flow.view()
    assert v.stage is Stage.HOSPITALS
    assert v.notice is not None
    assert flow.sent_case_ids() == ()


def test_forget_drops_the_case_anywhere(world: World, flow: CaseFlow, reader: TapReader) -> None:
    tap(flow, reader, VirtualCard(world.patient()))
    flow.choose_consent(Consent.UNCONSCIOUS)
    assert flow.view().summary
    flow.forget()  # idle timeout
    v = flow.view()
    assert v.stage is Stage.STANDBY
    assert not v.case_open
    assert v.summary == ()
    assert v.token_type is None
    assert v.consent is None


def test_no_reader_is_said(world: World, tmp_path: Path) -> None:
    f = make_flow(world, tmp_path, cards=None)
    try:
        assert not f.wait_for_card(timeout=0.1)
        assert f.view().reader_ok is False
        f.start_without_card()
        assert f.view().stage is Stage.VITALS
    finally:
        f.close()


@pytest.mark.parametrize("stage", [Stage.CONSENT, Stage.SUMMARY, Stage.VITALS])
def test_abort_with_a_card_at_any_stage(
    world: World, flow: CaseFlow, reader: TapReader, stage: Stage
) -> None:
    """中止 with a card read, before anything was sent: the device forgets the patient,
    nothing is queued, and the card left on the reader is not a new tap."""
    tap(flow, reader, VirtualCard(world.patient()))
    assert flow.view().stage is Stage.CONSENT
    if stage is not Stage.CONSENT:
        flow.choose_consent(Consent.CONSENTED)
        flow.choose_identity(IdentityMethod.FACE)
        assert flow.view().stage is Stage.SUMMARY
    if stage is Stage.VITALS:
        flow.to_vitals()
        flow.set_chief_complaint("腹痛")
    assert flow.view().stage is stage
    with pytest.raises(ValueError):
        flow.abort("気が変わった")  # only the list's reasons
    flow.abort("他隊へ引継ぎ")
    v = flow.view()
    assert v.stage is Stage.STANDBY
    assert not v.case_open
    assert v.summary == ()
    assert v.patient_label is None
    assert v.notice is not None
    assert v.notice.code == "aborted"
    assert "他隊へ引継ぎ" in v.notice.text.ja
    assert flow.sent_case_ids() == ()
    assert v.waiting_sealed == 0
    assert flow._await_removal  # the same card still on the reader is not a new case
