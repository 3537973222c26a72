"""Several vital sets in one case: each stays visible with its time, editable, its flags kept,
and each reaches the hospital as its own set."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.flow import JST, VITAL_FIELDS, CaseFlow, Stage, VitalsDraft
from hospital.casefile import read_case
from sync.fhir_case import build_case_bundle
from tests.edge._world import World, make_flow


@pytest.fixture
def flow(world: World, tmp_path: Path) -> Iterator[CaseFlow]:
    f = make_flow(world, tmp_path, background=False)
    yield f
    f.close()


def test_two_sets_edit_the_first_flags_kept(flow: CaseFlow) -> None:
    flow.start_without_card()
    flow.set_vital("systolic", 300)  # out of range: flagged, kept
    flow.set_vital("pulse", 130)  # abnormal (≥ 120): marked
    flow.set_vital("jcs", "10")
    v = flow.view()
    assert v.stage is Stage.VITALS
    assert v.vitals_selected == 1
    first_at = v.vitals[0].observed_at
    assert first_at is not None

    flow.new_vitals_set()
    flow.set_vital("systolic", 120)
    flow.set_vital("pulse", 80)
    v = flow.view()
    assert len(v.vitals) == 2
    assert v.vitals_selected == 2  # the new set is the one being edited
    second, first = v.vitals  # newest first
    # The new set started from the first (its JCS II-10 kept), two values changed.
    assert (second.systolic, second.pulse, second.flagged(), second.abnormal()) == (
        120,
        80,
        (),
        ("jcs",),
    )
    # The first set is still there, with its time and its flag.
    assert first.systolic == 300
    assert first.observed_at == first_at
    assert first.flagged() == ("systolic",)
    assert first.abnormal() == ("systolic", "pulse", "jcs")  # SI 130/300 < 1.0: not marked

    # Correct the first set: select it, key a value; its time and the other set stay.
    flow.select_vitals_set(1)
    assert flow.view().vitals_selected == 1
    flow.set_vital("diastolic", 200)
    second, first = flow.view().vitals
    assert (first.systolic, first.diastolic, first.observed_at) == (300, 200, first_at)
    assert first.flagged() == ("systolic", "diastolic")
    assert (second.systolic, second.diastolic) == (120, None)

    # A time that does not exist is refused with a next step; nothing changes.
    flow.set_vitals_time(1, "2460")
    v = flow.view()
    assert v.notice is not None
    assert v.notice.code == "bad_time"
    assert "0000〜2359" in v.notice.text.ja
    assert v.vitals[1].observed_at == first_at
    # The crew corrects the first set's time: ten minutes earlier, the same JST day nearest.
    earlier = (first_at - timedelta(minutes=10)).astimezone(JST)
    flow.set_vitals_time(1, earlier.strftime("%H%M"))
    v = flow.view()
    assert v.notice is None
    assert v.vitals[1].observed_at == earlier.replace(second=0, microsecond=0)
    assert v.vitals[1].systolic == 300  # still the first set, values kept
    assert v.vitals_selected == 1

    # ＋新しい測定 on an empty newest set adds no empty set.
    flow.new_vitals_set()
    flow.new_vitals_set()
    assert len(flow.view().vitals) == 3

    # What is sealed: one set per measurement with its own time; the hospital reads both.
    bundle = build_case_bundle(flow._record("case-vitals"))
    sets = read_case("case-vitals", bundle).vitals
    assert len(sets) == 2  # the empty third set is not sent
    newest, oldest = sets
    for read, kept in ((newest, v.vitals[0]), (oldest, v.vitals[1])):
        assert kept.observed_at is not None
        assert read.at == kept.observed_at.replace(microsecond=0)  # sent to the second
    assert oldest.get("systolic").flagged
    assert oldest.get("diastolic").flagged
    assert oldest.get("pulse").abnormal
    assert oldest.jcs_abnormal
    assert not newest.get("systolic").flagged
    assert newest.get("systolic").value == 120


def test_a_set_taken_just_after_midnight_corrected_to_the_evening_before(flow: CaseFlow) -> None:
    flow.start_without_card()
    flow.set_vital("pulse", 70)
    (taken,) = flow.view().vitals
    assert taken.observed_at is not None
    local = taken.observed_at.astimezone(JST)
    # Keyed as the time of day 12 h 10 min before: always the nearer (earlier) day.
    target = local - timedelta(hours=11, minutes=50)
    flow.set_vitals_time(1, target.strftime("%H%M"))
    (edited,) = flow.view().vitals
    assert edited.observed_at == target.replace(second=0, microsecond=0)


@pytest.mark.parametrize(
    ("name", "normal", "abnormal_values"),
    [  # product.md's prehospital alert thresholds (adults)
        ("systolic", (90, 179), (89, 180)),
        ("diastolic", (109,), (110,)),
        ("pulse", (50, 119), (49, 120)),
        ("respiration", (10, 29), (9, 30)),
        ("spo2", (90, 100), (89,)),
        ("temperature", (35.0, 38.4), (34.9, 38.5)),
        ("jcs", ("0", "3"), ("10", "300")),
    ],
)
def test_abnormal_marks_at_the_thresholds(
    name: str, normal: tuple[Any, ...], abnormal_values: tuple[Any, ...]
) -> None:
    for value in normal:
        assert name not in VitalsDraft(**{name: value}).abnormal(), value
    for value in abnormal_values:
        assert name in VitalsDraft(**{name: value}).abnormal(), value


def test_shock_index_marks_a_set() -> None:
    assert "shock_index" in VitalsDraft(systolic=100, pulse=100).abnormal()
    assert "shock_index" not in VitalsDraft(systolic=101, pulse=100).abnormal()
    assert "shock_index" not in VitalsDraft(pulse=100).abnormal()


def test_the_device_and_the_dashboard_check_the_same_ranges() -> None:
    """The dashboard's field table agrees with the device's on every shared value."""
    from hospital.casefile import FIELD as HOSPITAL

    for f in VITAL_FIELDS:
        if f.key in HOSPITAL:
            h = HOSPITAL[f.key]
            assert (h.plausible, h.low, h.high) == (f.plausible, f.low, f.high), f.key


def test_a_time_correction_keeps_the_sets_in_time_order(flow: CaseFlow) -> None:
    flow.start_without_card()
    flow.set_vital("pulse", 70)
    flow.new_vitals_set()
    flow.set_vital("pulse", 90)
    second = flow.view().vitals[0].observed_at
    assert second is not None
    # The first set was really taken two minutes after the second one.
    later = (second + timedelta(minutes=2)).astimezone(JST)
    flow.select_vitals_set(1)
    flow.set_vitals_time(1, later.strftime("%H%M"))
    v = flow.view()
    assert [s.pulse for s in v.vitals] == [70, 90]  # newest first: the corrected one
    assert v.vitals_selected == 2  # still the set just corrected, now numbered 2
    flow.set_vital("respiration", 20)
    assert flow.view().vitals[0].respiration == 20
