"""The hospital's case card shows every vitals set with its time and marks, through the real
web app: sealed by a device, delivered by the real platform, read by the receiving service.

Any values in a validly sealed case (huge, NaN, infinite, negative, text where a number
belongs, times at the ends of the calendar, hundreds of sets) show or are marked; the card
and the list never fail."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.fhir_case import LOINC, VitalSigns
from tests.hospital._world import Device, HospitalSite, make_bundle, platform, signed_in, wait_for

JST = timezone(timedelta(hours=9))
# The LOINC code of each value and where it sits (BP values are components of 85354-9).
CODES = {
    "systolic": "8480-6",
    "diastolic": "8462-4",
    "pulse": "8867-4",
    "respiration": "9279-1",
    "spo2": "59408-5",
    "temperature": "8310-5",
    "gcs": "9269-2",
}


@contextmanager
def hospital_and_device(
    tmp_path: Path, **hub_settings: Any
) -> Iterator[tuple[HospitalSite, Device, httpx.Client]]:
    with platform(tmp_path, **hub_settings) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.add_user(site, "alice")
        p.start(site)
        device = p.new_device()
        with signed_in(site, "alice") as client:
            yield site, device, client


def deliver(site: HospitalSite, device: Device, bundle: dict[str, Any], case_id: str) -> None:
    device.send([site.id], case_id=case_id, bundle=bundle)
    runtime = site.runtime
    assert runtime is not None
    wait_for(lambda: runtime.store.case(case_id), what="the case at the hospital")


def bundle_with_sets(case_id: str, device_id: str, sets: list[tuple[Any, dict[str, Any]]]) -> Any:
    """A case Bundle whose vitals are ``sets`` (time, {value name: anything}) as sent."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    full = dict(
        systolic_mmhg=1,
        diastolic_mmhg=1,
        heart_rate_per_min=1,
        respiratory_rate_per_min=1,
        spo2_percent=1,
        body_temperature_c=1,
        gcs_total=3,
        jcs="1",
    )
    vitals = [VitalSigns(observed_at=base + timedelta(minutes=i), **full) for i in range(len(sets))]
    bundle = make_bundle(case_id, device_id, vitals=vitals)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    panels = [
        r
        for r in by_url.values()
        if any(c.get("code") == "85353-1" for c in r.get("code", {}).get("coding", []))
    ]
    assert len(panels) == len(sets)
    for panel, (when, values) in zip(panels, sets, strict=True):
        panel["effectiveDateTime"] = when
        for member in panel["hasMember"]:
            obs = by_url[member["reference"]]
            obs["effectiveDateTime"] = when
            codes = {c["code"] for c in obs["code"]["coding"] if c["system"] == LOINC}
            for part in [obs, *obs.get("component", [])]:
                pcodes = {c["code"] for c in part.get("code", {}).get("coding", [])}
                for name, code in CODES.items():
                    if code in pcodes and "valueQuantity" in part:
                        part["valueQuantity"]["value"] = values.get(name)
            if "valueCodeableConcept" in obs and "jcs" in values:
                obs["valueCodeableConcept"]["coding"][0]["code"] = values["jcs"]
            assert codes or "valueCodeableConcept" in obs
    return bundle


def readable(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def card(client: httpx.Client, case_id: str) -> str:
    r = client.get(f"/cases/{case_id}")
    assert r.status_code == 200, r.text[:500]
    return r.text


def history_rows(page: str) -> list[str]:
    return re.findall(r'<tr class="vset" data-set="\d+">(.*?)</tr>', page, re.S)


def test_card_shows_both_sets_with_times_and_marks(tmp_path: Path) -> None:
    taken = datetime(2026, 12, 6, 1, 2, tzinfo=UTC)  # 10:02 JST
    with hospital_and_device(tmp_path) as (site, device, client):
        case_id = str(uuid.uuid4())
        bundle = make_bundle(
            case_id,
            device.id,
            vitals=(
                VitalSigns(observed_at=taken, systolic_mmhg=300, heart_rate_per_min=130, jcs="10"),
                VitalSigns(
                    observed_at=taken + timedelta(minutes=10),
                    systolic_mmhg=120,
                    diastolic_mmhg=80,
                    heart_rate_per_min=88,
                    jcs="1",
                ),
            ),
        )
        deliver(site, device, bundle, case_id)
        page = card(client, case_id)
        rows = history_rows(page)
        assert len(rows) == 2
        newest, first = rows  # newest first, each with its time
        assert "2回目 12/06 10:12" in newest
        assert "1回目 12/06 10:02" in first
        assert "120" in newest
        assert "⚠" not in newest
        assert "◆" not in newest
        assert "300/—⚠◆" in first  # out of range and abnormal, kept on the first set
        assert "130◆" in first
        assert "II-10◆" in first
        assert "最新の測定 12/06 10:12（全2回）" in page
        assert '<div class="history">' in page  # the card shows them all, never collapsed
        listing = client.get("/cases/list")
        assert listing.status_code == 200
        assert len(history_rows(listing.text)) == 2


_EXTREME_TIMES = [
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-02-30T10:00:00+09:00",
    "yesterday",
    "",
    None,
    12,
    ["2026-01-01"],
]
_times = st.one_of(
    st.sampled_from(_EXTREME_TIMES),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([1e308, -1e308, float("inf"), float("nan"), 10**4000, -0.0]),
    st.text(max_size=12),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
_jcs = st.one_of(st.sampled_from(["0", "10", "300", "9" * 50, "<b>x</b>"]), st.text(max_size=8))
_set = st.tuples(
    _times,
    st.fixed_dictionaries(
        {name: _values for name in CODES} | {"jcs": _jcs},
    ),
)


def test_any_vital_values_render_through_the_real_app(tmp_path: Path) -> None:
    with hospital_and_device(tmp_path) as (site, device, client):

        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(_set, min_size=1, max_size=4))
        def check(sets: list[tuple[Any, dict[str, Any]]]) -> None:
            case_id = str(uuid.uuid4())
            deliver(site, device, bundle_with_sets(case_id, device.id, sets), case_id)
            page = card(client, case_id)
            rows = history_rows(page)
            assert len(rows) == len(sets)
            if any(not readable(v) and v is not None for _, vals in sets for v in vals.values()):
                # jcs is text, not a number: only the numeric values count here.
                numeric = [v for _, vals in sets for k, v in vals.items() if k != "jcs"]
                if any(not readable(v) and v is not None for v in numeric):
                    assert "判読不可" in page
            for when, _ in sets:
                if not isinstance(when, str):
                    assert any("時刻" in row for row in rows)
            assert "<b>x</b>" not in page  # text from the case is escaped

        check()
        assert client.get("/").status_code == 200
        assert client.get("/cases/list").status_code == 200


def test_hundreds_of_sets_at_the_ends_of_the_calendar(tmp_path: Path) -> None:
    sets: list[tuple[Any, dict[str, Any]]] = []
    for i in range(300):
        when = _EXTREME_TIMES[i % len(_EXTREME_TIMES)]
        value = [10**400, float("nan"), 1e999, -5, "百二十", 120][i % 6]
        sets.append((when, dict.fromkeys(CODES, value) | {"jcs": "300"}))
    # 300 full sets are about 2 MB sealed: more than the platform's default body limit.
    with hospital_and_device(tmp_path, max_body_bytes=8 * 1024 * 1024) as (site, device, client):
        case_id = str(uuid.uuid4())
        deliver(site, device, bundle_with_sets(case_id, device.id, sets), case_id)
        page = card(client, case_id)
        assert len(history_rows(page)) == 300
        assert "判読不可" in page
        assert "時刻範囲外" in page  # 9999-12-31T23:59:59Z is past the JST calendar
        assert "時刻不明" in page  # yesterday
        assert "-5" in page  # negative: shown and flagged
        assert client.get("/").status_code == 200
