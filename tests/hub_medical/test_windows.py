"""The 救急用サマリー windows at their edges, and over random dates (hypothesis)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_server.medical import build_summary_bundle
from hub_server.medical._windows import japan_today, minus_months

from ._helpers import iso, section, validate

NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)  # 12:00 JST, 2026-06-15
TODAY = date(2026, 6, 15)
HC = [170.0, 65.0, 22.5, 80.0, 128.0, 78.0, 5.6, 95.0, 120.0, 60.0, 110.0, 22.0, 20.0, 30.0]
HC += [0.8, 14.5]


def base_record(**lists: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "v": 1,
        "asof": iso(TODAY),
        "p": {
            "family": "山田",
            "given": "太郎",
            "family_kana": "ヤマダ",
            "given_kana": "タロウ",
            "birth_date": "1950-04-01",
            "sex": "1",
            "postal_code": "154-0004",
            "prefecture": "東京都",
            "city": "世田谷区",
            "line": "太子堂1丁目2番3号",
        },
        "allergies": [],
        "conditions": [],
        "regimens": [],
        "dx": None,
        "visits": [],
        "eprescriptions": [],
        "medications": [],
        "surgeries": [],
        "treatments": [],
        "dialysis": [],
        "checks": [],
    }
    rec.update(lists)
    return rec


def ago(days: int) -> str:
    return iso(TODAY - timedelta(days=days))


def rx_item(d: str) -> dict[str, Any]:
    return {"d": d, "o": "c01", "by": "c01", "rx": [["warfarin1", 28]]}


def dates(bundle: dict[str, Any], key: str) -> list[str]:
    out = []
    for r in section(bundle, key):
        t = r["resourceType"]
        if t == "Encounter":
            out.append(r["period"]["start"])
        elif t == "MedicationRequest":
            out.append(r["authoredOn"])
        elif t == "MedicationStatement":
            out.append(r["effectivePeriod"]["start"])
        elif t == "Procedure":
            out.append(r.get("performedDateTime") or r["performedPeriod"]["end"])
        elif t == "Observation":
            out.append(r["effectiveDateTime"])
    return sorted(set(out))


def both(rec: dict[str, Any], now: datetime = NOW) -> tuple[dict[str, Any], dict[str, Any]]:
    emergency = build_summary_bundle(rec, now=now)
    full = build_summary_bundle(rec, now=now, full=True)
    validate(emergency)
    validate(full)
    return emergency, full


def test_eprescriptions_45_days_emergency_100_days_full() -> None:
    items = [rx_item(ago(n)) for n in (0, 45, 46, 100, 101)]
    emergency, full = both(base_record(eprescriptions=items))
    assert dates(emergency, "eprescriptions") == sorted([ago(0), ago(45)])
    assert dates(full, "eprescriptions") == sorted([ago(0), ago(45), ago(46), ago(100)])
    # An item 46 days old is gone from the emergency view but in the full view.
    assert ago(46) not in dates(emergency, "eprescriptions")
    assert ago(46) in dates(full, "eprescriptions")


def test_three_month_sections_count_calendar_months() -> None:
    edge, before = "2026-03-15", "2026-03-14"
    old_edge, older = "2021-06-15", "2021-06-14"
    rec = base_record(
        medications=[rx_item(d) for d in (edge, before, old_edge, older)],
        visits=[{"d": d, "o": "c01", "c": "AMB"} for d in (edge, before, old_edge, older)],
        treatments=[{"d": d, "k": "drip", "o": "c01"} for d in (edge, before, old_edge, older)],
        dialysis=[{"d": d, "s": d, "n": 1, "o": "d01"} for d in (edge, before, old_edge, older)],
    )
    emergency, full = both(rec)
    for key in ("medications", "visits", "treatments", "dialysis"):
        assert dates(emergency, key) == [edge], key
        assert dates(full, key) == sorted([old_edge, edge, before]), key


def test_month_end_is_clamped() -> None:
    assert minus_months(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert minus_months(date(2024, 2, 29), 60) == date(2019, 2, 28)
    assert minus_months(date(2026, 1, 15), 1) == date(2025, 12, 15)


def test_surgeries_five_years_in_both_views() -> None:
    rec = base_record(
        surgeries=[{"d": d, "k": "tha", "o": "h01"} for d in ("2021-06-15", "2021-06-14")]
    )
    emergency, full = both(rec)
    assert dates(emergency, "surgeries") == ["2021-06-15"]
    assert dates(full, "surgeries") == ["2021-06-15"]


def test_health_check_latest_only_in_emergency() -> None:
    checks = [{"d": d, "o": "k01", "v": HC} for d in ("2019-09-01", "2023-09-01", "2025-09-01")]
    emergency, full = both(base_record(checks=checks))
    assert dates(emergency, "checks") == ["2025-09-01"]
    assert dates(full, "checks") == ["2023-09-01", "2025-09-01"]
    obs = section(emergency, "checks")
    codes = {c["code"] for o in obs for c in o["code"]["coding"]}
    assert {"85354-9", "4548-4", "29463-7", "2160-0"} <= codes
    bp = next(o for o in obs if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
    assert all(o["code"]["coding"][0]["system"] == "http://loinc.org" for o in obs)


def test_future_items_are_not_yet_in_the_record() -> None:
    rec = base_record(medications=[rx_item(iso(TODAY + timedelta(days=1))), rx_item(ago(0))])
    emergency, _ = both(rec)
    assert dates(emergency, "medications") == [ago(0)]


def test_today_is_the_japan_date() -> None:
    late_utc = datetime(2026, 6, 14, 15, 30, tzinfo=UTC)  # 00:30 JST on the 15th
    assert japan_today(late_utc) == TODAY
    # 46 days old in Japan (45 by the UTC date): out of the emergency window.
    rec = base_record(eprescriptions=[rx_item(ago(46))])
    assert dates(build_summary_bundle(rec, now=late_utc), "eprescriptions") == []
    early = datetime(2026, 6, 14, 14, 59, tzinfo=UTC)  # still the 14th in Japan: 45 days
    assert dates(build_summary_bundle(rec, now=early), "eprescriptions") == [ago(46)]


def test_inpatient_stay_counts_by_its_last_day() -> None:
    rec = base_record(visits=[{"d": "2026-02-01", "o": "h01", "c": "IMP", "end": "2026-03-20"}])
    emergency, _ = both(rec)
    (enc,) = section(emergency, "visits")
    assert enc["period"] == {"start": "2026-02-01", "end": "2026-03-20"}
    assert enc["class"]["code"] == "IMP"


def test_allergies_and_conditions_always_shown_first() -> None:
    rec = base_record(
        allergies=[{"k": "penicillin", "d": "2001-01-01"}],
        conditions=[
            {"k": "af", "d": "2005-01-01", "s": "active"},
            {"k": "uri", "d": "2022-01-01", "s": "resolved"},
            {"k": "cystitis", "d": ago(10), "s": "resolved"},
        ],
    )
    emergency, full = both(rec)
    assert [a["code"]["text"] for a in section(emergency, "allergies")] == ["ペニシリン系抗菌薬"]
    names = [c["code"]["text"] for c in section(emergency, "conditions")]
    assert names == ["心房細動", "急性膀胱炎"]  # old resolved episode only in the full view
    assert [c["code"]["text"] for c in section(full, "conditions")][:1] == ["心房細動"]
    assert "急性上気道炎" in [c["code"]["text"] for c in section(full, "conditions")]
    comp = emergency["entry"][0]["resource"]
    assert [s["title"] for s in comp["section"][:2]] == ["アレルギー・副作用", "傷病名"]
    # Composition, Patient, then allergies before conditions before everything else.
    kinds = [e["resource"]["resourceType"] for e in emergency["entry"]]
    assert kinds[:5] == ["Composition", "Patient", "AllergyIntolerance", "Condition", "Condition"]


def test_regimen_expands_into_visits_dispensings_and_eprescriptions() -> None:
    reg = {
        "o": "c03",
        "ph": "p01",
        "s": "2020-01-01",
        "e": iso(TODAY),
        "i": 28,
        "rx": [["apixaban5", "2020-01-01"], ["bisoprolol2_5", ago(30)]],
        "ep": ago(60),
        "tx": None,
    }
    emergency, full = both(base_record(regimens=[reg]))
    assert dates(emergency, "visits") == sorted(ago(n) for n in (0, 28, 56, 84))
    meds = section(emergency, "medications")
    assert len(meds) == 4 + 2  # bisoprolol only since 30 days ago
    assert meds[0]["informationSource"]["display"] == "あおば調剤薬局"
    assert dates(emergency, "eprescriptions") == sorted([ago(0), ago(28)])
    assert len(dates(full, "eprescriptions")) == 3  # from the e-prescription start, 100 days
    assert len(dates(full, "visits")) > 60


def test_dialysis_schedule_is_monthly() -> None:
    rec = base_record(dx={"o": "d01", "s": "2010-04-01", "e": iso(TODAY)})
    emergency, full = both(rec)
    procs = section(emergency, "dialysis")
    assert procs
    assert all(p["code"]["coding"][0]["code"] == "302497006" for p in procs)
    assert all(11 <= int(p["note"][0]["text"].rstrip("回")) <= 14 for p in procs[1:])
    assert 58 <= len(section(full, "dialysis")) <= 62


def _reference_months_back(today: date, months: int) -> date:
    # Independent of the implementation: walk back month by month.
    y, m = today.year, today.month
    for _ in range(months):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return date(y, m, min(today.day, calendar.monthrange(y, m)[1]))


EXPECT = {
    False: {"eprescriptions": ("days", 45), "medications": ("months", 3), "visits": ("months", 3)},
    True: {
        "eprescriptions": ("days", 100),
        "medications": ("months", 60),
        "visits": ("months", 60),
    },
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    ages=st.lists(st.integers(min_value=-3, max_value=2000), min_size=1, max_size=12),
    full=st.booleans(),
)
def test_windows_over_random_dates(now: datetime, ages: list[int], full: bool) -> None:
    now = now.replace(tzinfo=UTC)
    today = japan_today(now)
    ds = sorted({iso(today - timedelta(days=a)) for a in ages})
    rec = base_record(
        eprescriptions=[rx_item(d) for d in ds],
        medications=[rx_item(d) for d in ds],
        visits=[{"d": d, "o": "c01", "c": "AMB"} for d in ds],
    )
    bundle = build_summary_bundle(rec, now=now, full=full)
    for key, (unit, n) in EXPECT[full].items():
        lo = today - timedelta(days=n) if unit == "days" else _reference_months_back(today, n)
        expected = [d for d in ds if lo <= date.fromisoformat(d) <= today]
        assert dates(bundle, key) == expected, (key, today)
