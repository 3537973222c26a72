"""One line per drug: grouping the summary's dispensing history (unit and property tests).

The resources come from the platform, so the grouping must hold for anything it sends:
missing or malformed dates, unknown drugs, duplicates, hundreds of fills.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.flow._drugs import (
    UNKNOWN_DRUG,
    DrugLine,
    Fill,
    group_drugs,
    medication_fill,
    not_dispensed,
)
from edge.flow._summary import _outpatient_by_place, summary_sections
from hub_server.medical import build_summary_bundle
from tests.ui._patients import DRUGS, typical_record


def _statement(name: Any, start: Any, end: Any = None, *, code: Any = "C08CA01") -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "medicationCodeableConcept": {"coding": [{"code": code}], "text": name},
        "effectivePeriod": {"start": start, "end": end},
        "dosage": [{"text": "1日1回朝食後 1回1錠"}],
        "informationSource": {"display": "すみれ薬局 駅前店"},
    }


def test_monthly_refills_are_one_line_with_the_latest_prescription() -> None:
    fills = [
        medication_fill(_statement("アムロジピン錠5mg", "2026-09-05", "2026-10-02")),
        medication_fill(_statement("アムロジピン錠5mg", "2026-11-28", "2026-12-25")),
        medication_fill(_statement("アムロジピン錠5mg", "2026-10-03", "2026-11-27")),  # 56 days
        medication_fill(_statement("フロセミド錠20mg", "2026-10-03", "2026-10-30")),
    ]
    lines = group_drugs(fills)
    assert [d.name for d in lines] == ["アムロジピン錠5mg", "フロセミド錠20mg"]  # newest first
    amlodipine = lines[0]
    assert (amlodipine.first, amlodipine.last, amlodipine.fills) == (
        date(2026, 9, 5),
        date(2026, 11, 28),
        3,
    )
    assert amlodipine.days == 28  # the latest fill's supply, not the 56-day one
    assert amlodipine.text() == (
        "アムロジピン錠5mg 1日1回朝食後 1回1錠 28日分  2026/09/05〜2026/11/28 計3回"
    )
    assert lines[1].text() == "フロセミド錠20mg 1日1回朝食後 1回1錠 28日分  2026/10/03 計1回"


def test_prescriptions_read_from_medication_requests() -> None:
    fill = medication_fill(
        {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"coding": [{"code": "X", "display": "薬A"}]},
            "authoredOn": "2026-11-01",
            "dosageInstruction": [{"text": "頓用"}],
            "dispenseRequest": {"expectedSupplyDuration": {"value": 14}},
            "requester": {"display": "さくら内科クリニック"},
        }
    )
    assert fill == Fill("薬A", "X", date(2026, 11, 1), "頓用", 14, "さくら内科クリニック")


def test_missing_dates_unknown_drugs_and_duplicates() -> None:
    dup = _statement("ワルファリン錠1mg", "2026-11-01", "2026-11-28")
    fills = [
        medication_fill(dup),
        medication_fill(dict(dup)),  # sent twice: counted once
        medication_fill(_statement("ワルファリン錠1mg", "11/01/2026")),  # no usable date
        medication_fill(_statement(None, "2026-10-01", code=None)),  # no name, no code
        medication_fill(_statement(None, None, code="B01AF02")),  # a code only, no date
        medication_fill({"resourceType": "Observation"}),
        medication_fill("not a resource"),
    ]
    lines = {d.name: d for d in group_drugs(fills)}
    assert set(lines) == {"ワルファリン錠1mg", UNKNOWN_DRUG, "B01AF02"}
    warfarin = lines["ワルファリン錠1mg"]
    nov1 = date(2026, 11, 1)
    assert (warfarin.fills, warfarin.first, warfarin.last) == (2, nov1, nov1)
    assert lines["B01AF02"].text().endswith("日付不明 計1回")
    assert list(lines)[-1] == "B01AF02"  # undated drugs last
    assert lines[UNKNOWN_DRUG].days is None  # no end date: no supply shown


def test_a_hostile_name_is_one_short_line() -> None:
    (line,) = group_drugs([medication_fill(_statement("薬\n[bold]X[/]\x1b[2J" * 50, "2026-01-01"))])
    assert "\n" not in line.text()
    assert "\x1b" not in line.text()
    assert len(line.name) <= 80


def test_prescriptions_already_dispensed_are_not_repeated() -> None:
    def line(name: str, last: date | None) -> DrugLine:
        return DrugLine(name, None, None, last, last, 1)

    dispensed = (line("A", date(2026, 11, 20)), line("B", date(2026, 11, 1)))
    prescribed = (
        line("A", date(2026, 11, 20)),  # dispensed that day
        line("B", date(2026, 11, 25)),  # prescribed again since: shown
        line("C", date(2026, 11, 1)),  # never dispensed: shown
        line("A", None),  # undated: shown
    )
    assert [d.name for d in not_dispensed(prescribed, dispensed)] == ["B", "C", "A"]


def test_the_typical_patient_from_the_real_bundle() -> None:
    asof = date(2026, 12, 6)
    bundle = build_summary_bundle(typical_record(asof), now=datetime(2026, 12, 6, 3, tzinfo=UTC))
    sections = {s.key: s for s in summary_sections(bundle)}
    meds = sections["medications"]
    assert meds.drugs == len(DRUGS) == len(meds.lines)
    assert all(line.count("計") == 1 and "/" in line for line in meds.lines)
    assert sections["eprescriptions"].drugs == len(DRUGS)
    assert sections["eprescriptions"].lines == ("10剤とも薬剤情報と同じ（調剤済み）",)
    (check,) = sections["checks"].lines  # one line per health check, not one per value
    assert check.startswith("2026/05/20 身長 163.2 cm、体重 61.0 kg")
    # Routine visits: one line per clinic, newest first (13 weeks: 4 + 3 + 2 visits).
    assert sections["visits"].lines == (
        "2026/09/08〜2026/12/01 外来 山田循環器内科 計4回",
        "2026/09/29〜2026/11/24 外来 さくら内科クリニック 計3回",
        "2026/09/21〜2026/11/16 外来 あおぞら糖尿病内科クリニック 計2回",
    )


def test_stays_and_visits_with_a_reason_keep_their_own_lines() -> None:
    lines = (
        "2026/11/20 外来 A医院",
        "2026/11/10〜2026/11/15 入院 B病院",
        "2026/11/02 救急外来 B病院（急性気管支炎）",
        "2026/10/20 外来 A医院",
        "2026/10/20 外来 A医院",
        "2026/10/01 外来 C医院",
        "2026/09/01 外来 A医院（腰痛症）",
    )
    assert _outpatient_by_place(lines) == (
        "2026/10/20〜2026/11/20 外来 A医院 計2回",
        "2026/11/10〜2026/11/15 入院 B病院",
        "2026/11/02 救急外来 B病院（急性気管支炎）",
        "2026/10/01 外来 C医院",
        "2026/09/01 外来 A医院（腰痛症）",
    )


# -- properties ----------------------------------------------------------------------------

names = st.sampled_from(["アムロジピン錠5mg", "フロセミド錠20mg", "薬A", ""]) | st.none()
dates = st.dates(date(2020, 1, 1), date(2027, 12, 31)) | st.none()
fills_st = st.builds(
    Fill,
    name=names,
    code=st.sampled_from(["C08CA01", "C03CA01", "?"]) | st.none(),
    on=dates,
    sig=st.sampled_from(["1日1回朝食後", "頓用"]) | st.none(),
    days=st.sampled_from([7, 14, 28]) | st.none(),
    source=st.sampled_from(["p01", "p02"]) | st.none(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(fills_st | st.none(), max_size=400))
def test_grouping_properties(fills: list[Fill | None]) -> None:
    lines = group_drugs(fills)
    real = [f for f in fills if f is not None]
    # One line per drug; every distinct fill counted once, none lost.
    assert len({d.name for d in lines}) == len(lines)
    assert len(lines) == len({f.drug for f in real})
    assert sum(d.fills for d in lines) == len(set(real))
    for d in lines:
        mine = [f for f in real if (f.drug or UNKNOWN_DRUG) == d.name]
        dated = [f.on for f in mine if f.on is not None]
        assert (d.first, d.last) == ((min(dated), max(dated)) if dated else (None, None))
        # The latest prescription: its directions and days are those of a fill of the last date.
        assert any((f.sig, f.days, f.on) == (d.sig, d.days, d.last) for f in mine)
        assert "\n" not in d.text()
    # Newest first, undated last; and the order the platform sent them in does not matter.
    keys = [(d.last is None, -(d.last.toordinal() if d.last else 0)) for d in lines]
    assert keys == sorted(keys)
    assert group_drugs(reversed(fills)) == lines


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
resource_st = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["MedicationStatement", "MedicationRequest"])},
    optional={
        "medicationCodeableConcept": json_values,
        "effectivePeriod": st.fixed_dictionaries(
            {}, optional={"start": json_values | st.just("2026-01-01"), "end": json_values}
        ),
        "authoredOn": json_values | st.just("2026-02-30"),
        "dateAsserted": json_values,
        "dosage": json_values,
        "dosageInstruction": json_values,
        "dispenseRequest": json_values,
        "informationSource": json_values,
        "requester": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(resource_st | json_values, max_size=30))
def test_any_resource_json_never_crashes(resources: list[Any]) -> None:
    lines = group_drugs(medication_fill(r) for r in resources)
    for d in lines:
        assert d.fills >= 1
        assert d.days is None or 1 <= d.days <= 3650
        assert isinstance(d.text(), str)


def _bundle_of(resources: list[Any]) -> dict[str, Any]:
    urls = [f"urn:uuid:{i}" for i in range(len(resources))]
    section = {
        "code": {"coding": [{"code": "medications"}]},
        "text": {"div": "<div><ul><li>2026-01-01 薬（narrative）</li></ul></div>"},
        "entry": [{"reference": u} for u in urls] + [{"reference": "urn:uuid:missing"}, 7],
    }
    composition = {"resourceType": "Composition", "section": [section]}
    return {
        "entry": [{"resource": composition}]
        + [{"fullUrl": u, "resource": r} for u, r in zip(urls, resources, strict=True)]
    }


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.builds(
            _statement,
            name=st.sampled_from(["A錠", "B錠", "C錠"]) | st.none(),
            start=st.sampled_from(["2026-01-01", "2026-02-01", "bad", None]),
            end=st.sampled_from(["2026-01-28", None]),
            code=st.sampled_from(["X1", "X2"]) | st.none(),
        ),
        min_size=1,
        max_size=300,
    )
)
def test_the_medications_section_is_one_line_per_drug(resources: list[dict[str, Any]]) -> None:
    meds = next(s for s in summary_sections(_bundle_of(resources)) if s.key == "medications")
    drugs = {medication_fill(r).drug for r in resources}  # type: ignore[union-attr]
    assert meds.drugs == len(meds.lines) == len(drugs)
    assert all("計" in line for line in meds.lines)


def test_a_drug_section_without_readable_resources_keeps_its_narrative() -> None:
    meds = next(s for s in summary_sections(_bundle_of([])) if s.key == "medications")
    assert meds.lines == ("2026/01/01 薬（narrative）",)
    assert meds.drugs is None
