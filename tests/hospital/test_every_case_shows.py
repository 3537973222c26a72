"""Every view renders every stored case; staff see refused cases and the vouched sender.

Cases are stored straight into the hospital's real ``HospitalStore`` (sealed at rest
with its storage key) behind the real dashboard app under uvicorn, on a hospital set up
with the real CLI on a real platform; staff sign in with password and TOTP. A value
the dashboard cannot show gets a placeholder in its own field; a case that cannot be
read at all is a row saying so; neither ever turns the list into an error page.
"""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from hospital.store import CaseRow, HospitalStore, Rejection
from sync.fhir_case import VitalSigns
from tests.components import fresh_postgres_database
from tests.hospital._world import PASSWORD, HospitalSite, cli, make_bundle, platform, signed_in

DEVICE = "dev-mountain-1"
GCS = "9269-2"
VITALS_PANEL = "85353-1"


@dataclass
class Site:
    site: HospitalSite
    store: HospitalStore
    client: httpx.Client


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def hospital(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """One hospital (its store on SQLite, then on PostgreSQL) for the module's cases."""
    tmp = tmp_path_factory.mktemp("every-case")
    with ExitStack() as stack, platform(tmp) as p:
        site = p.new_hospital(tmp, "テスト中央病院", 35.685, 139.77)
        if request.param == "postgres":
            url = stack.enter_context(fresh_postgres_database())
            doc = cli(
                "hospital", "user", "add", "alice", "--data-dir", str(site.data_dir),
                "--db", url, "--password", PASSWORD, "--display-name", "alice 医師",
            )  # fmt: skip
            site.users["alice"] = doc["totp_secret"]
            p.start(site, db_url=url)
        else:
            p.add_user(site, "alice")
            p.start(site)
        assert site.runtime is not None
        with signed_in(site, "alice") as client:
            yield Site(site, site.runtime.store, client)


def store_case(
    store: HospitalStore,
    bundle: Any,
    *,
    case_id: str | None = None,
    sealed_at: int | None = None,
    sender_department: str | None = None,
    suspect: bool = False,
) -> str:
    """Store ``bundle`` as an opened case through the store's API (sealed at rest);
    the platform-vouched sender and the suspect flag as the receiving side sets them."""
    case_id = case_id or str(uuid.uuid4())
    assert store.add_case(
        case_id=case_id,
        event_id=1,
        device_id=DEVICE,
        sealed_at=int(datetime.now(UTC).timestamp()) if sealed_at is None else sealed_at,
        bundle=bundle,
    )
    if sender_department is not None or suspect:
        with store.session() as s:
            row = s.get(CaseRow, case_id)
            assert row is not None
            row.sender_department, row.sealed_at_suspect = sender_department, suspect
            s.add(row)
            s.commit()
    return case_id


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]]


def with_codes(bundle: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [
        r
        for r in resources(bundle)
        if any(c.get("code") == code for c in r.get("code", {}).get("coding", []))
    ]


def a_case(case_id: str) -> dict[str, Any]:
    return make_bundle(case_id, DEVICE)


def card_of(page: str, case_id: str) -> str:
    """The article of ``case_id`` in a page (the list or the detail)."""
    m = re.search(rf'<article [^>]*data-case-id="{re.escape(case_id)}".*?</article>', page, re.S)
    assert m, f"no card for {case_id}"
    return m.group(0)


def shown(client: httpx.Client, case_id: str) -> tuple[str, str]:
    """The case's card on its own page and in the list; both pages and / answer 200."""
    detail = client.get(f"/cases/{case_id}")
    assert detail.status_code == 200, detail.text[:300]
    listing = client.get("/cases/list")
    assert listing.status_code == 200, listing.text[:300]
    assert client.get("/").status_code == 200
    return card_of(detail.text, case_id), card_of(listing.text, case_id)


# -- the defects of issue 20, each -------------------------------------------------------


def _vitals_time(when: str) -> Any:
    def change(b: dict[str, Any]) -> None:
        for r in resources(b):
            if "effectiveDateTime" in r:
                r["effectiveDateTime"] = when

    return change


def _gcs(value: Any) -> Any:
    def change(b: dict[str, Any]) -> None:
        for r in with_codes(b, GCS):
            r["valueQuantity"]["value"] = value

    return change


def _jcs(code: str) -> Any:
    def change(b: dict[str, Any]) -> None:
        for r in with_codes(b, "jcs"):
            r["valueCodeableConcept"]["coding"][0]["code"] = code

    return change


def _ems_times(when: str) -> Any:
    def change(b: dict[str, Any]) -> None:
        for r in resources(b):
            if r["resourceType"] == "Encounter":
                for ext in r.get("extension", []):
                    if "valueDateTime" in ext:
                        ext["valueDateTime"] = when
                r.get("period", {})["start"] = when

    return change


def _birth(value: Any) -> Any:
    def change(b: dict[str, Any]) -> None:
        for r in resources(b):
            if r["resourceType"] == "Patient":
                r["birthDate"] = value

    return change


@pytest.mark.parametrize(
    ("change", "placeholder"),
    [
        (_vitals_time("9999-12-31T23:59:59Z"), "時刻範囲外"),
        (_vitals_time("0001-01-01T00:00:00+14:00"), "時刻範囲外"),
        (_gcs(math.inf), "判読不可"),  # 1e999 in the JSON
        (_gcs(math.nan), "判読不可"),
        (_jcs("¹"), "¹"),  # a digit to str.isdigit, not to int(): was a 500
        (_jcs("1" * 5000), "111"),  # more digits than int() reads: was a 500
        (_ems_times("9999-12-31T23:59:59Z"), "時刻不正"),
        (_birth("0001-01-01"), "年齢表示できません"),
        (_birth(19700101), "年齢表示できません"),
    ],
    ids=[
        "vitals-9999",
        "vitals-0001+14",
        "gcs-inf",
        "gcs-nan",
        "jcs-superscript",
        "jcs-5000-digits",
        "ems-times-9999",
        "birth-year-1",
        "birth-not-text",
    ],
)
def test_each_defect_shows_in_its_field(hospital: Site, change: Any, placeholder: str) -> None:
    case_id = str(uuid.uuid4())
    bundle = a_case(case_id)
    change(bundle)
    store_case(hospital.store, bundle, case_id=case_id)
    for card in shown(hospital.client, case_id):
        assert "data-unreadable" not in card  # the card itself, with the placeholder
        assert placeholder in card
        assert "胸痛" in card  # the rest of the case is there


def test_sealing_time_past_the_calendar(hospital: Site) -> None:
    """A sealing time no date can hold (the column is 64-bit): was a 500 for the list."""
    case_id = store_case(hospital.store, {"resourceType": "Bundle", "entry": []}, sealed_at=10**15)
    for card in shown(hospital.client, case_id):
        assert "data-unreadable" not in card
        assert '封緘 <span class="sealed">表示できません（時刻範囲外）</span>' in card


def test_closure_time_past_the_calendar(hospital: Site) -> None:
    """中止 at 9999-12-31T23:59:59Z (the device's clock): shown closed, time marked."""
    case_id = store_case(hospital.store, a_case("x"))
    assert hospital.store.add_closure(
        case_id=case_id,
        event_id=2,
        reason="不搬送",
        closed_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    for card in shown(hospital.client, case_id):
        assert 'data-status="closed"' in card
        assert "表示できません（時刻範囲外） 救急隊が事案を中止しました" in card


def test_a_case_that_cannot_be_read_is_a_row_saying_so(hospital: Site) -> None:
    good = store_case(hospital.store, a_case("g"), sender_department="山奥村消防本部")
    bad = store_case(hospital.store, a_case("b"), sender_department="山奥村消防本部")
    with hospital.store.session() as s:  # at rest, the sealed Bundle no longer opens
        row = s.get(CaseRow, bad)
        assert row is not None
        row.blob = row.blob[:-1] + bytes([row.blob[-1] ^ 1])
        s.add(row)
        s.commit()
    bad_detail, bad_listed = shown(hospital.client, bad)
    for card in (bad_detail, bad_listed):
        assert 'data-unreadable="1"' in card
        assert "この事案の内容を表示できません" in card
        assert "送信元の消防本部に電話で確認してください" in card
        assert "山奥村消防本部" in card  # who sent it
        assert DEVICE in card
        assert "受信 " in card  # and when it came
        assert 'value="accept"' in card  # it can still be answered (after a call)
    listing = hospital.client.get("/cases/list").text
    assert "data-unreadable" not in card_of(listing, good)  # the rest of the list is there


# -- the sender the platform vouches for ------------------------------------------------


def _claiming(case_id: str, department: str, ambulance: str) -> dict[str, Any]:
    bundle = a_case(case_id)
    for r in resources(bundle):
        if r["resourceType"] == "Device":
            r["owner"]["display"] = department
            r["deviceName"][0]["name"] = ambulance
    return bundle


def test_sender_is_the_vouched_one_and_a_differing_claim_is_marked(hospital: Site) -> None:
    differs = store_case(
        hospital.store,
        _claiming("d", "東京消防庁", "丸の内救急1"),
        sender_department="山奥村消防本部",
    )
    for card in shown(hospital.client, differs):
        assert '送信元: <bdi class="dept">山奥村消防本部</bdi>' in card
        assert f'<bdi class="device">{DEVICE}</bdi>' in card
        assert "事案内の記載: <bdi>東京消防庁 丸の内救急1</bdi>（登録と異なる）" in card

    same = store_case(
        hospital.store,
        _claiming("s", "山奥村消防本部", "山奥救急1"),
        sender_department="山奥村消防本部",
    )
    for card in shown(hospital.client, same):
        assert '送信元: <bdi class="dept">山奥村消防本部</bdi>' in card
        assert "事案内の記載" not in card  # nothing differs: no claim beside it
        assert "山奥救急1" in card

    older = store_case(hospital.store, _claiming("o", "東京消防庁", "丸の内救急1"))
    for card in shown(hospital.client, older):  # stored before the vouched sender was kept
        assert 'data-verified="0"' in card
        assert "事案内の記載: <bdi>東京消防庁 丸の内救急1</bdi>（未確認）" in card


def test_a_suspect_sealing_time_is_marked(hospital: Site) -> None:
    mark = "送信機器の時計が不正確な可能性"
    flagged = store_case(hospital.store, a_case("f"), sealed_at=4102444800 * 10, suspect=True)
    plain = store_case(hospital.store, a_case("p"))
    for card in shown(hospital.client, flagged):
        assert mark in card
        assert 'data-sealed-suspect="1"' in card
    for card in shown(hospital.client, plain):
        assert mark not in card


def test_an_answer_the_platform_does_not_have_yet_shows_unsent(hospital: Site) -> None:
    """An answer kept while the platform was out (``answer_unsent``) is never shown as a
    delivered one: 「未送信」 with the next step, until the platform takes it."""
    case_id = store_case(hospital.store, a_case("u"))
    hospital.store.set_answer(case_id, answer="accept", reason=None, by="alice", sent=False)
    versions = {
        i["case_id"]: i["version"] for i in hospital.client.get("/api/cases").json()["cases"]
    }
    for card in shown(hospital.client, case_id):
        assert 'data-unsent="1"' in card
        assert "受入可（未送信）" in card
        assert '<span class="badge ok" data-status="accepted">受入可</span>' not in card
        assert "急ぐ場合は救急隊に電話で伝えてください" in card
    hospital.store.mark_answer_sent(case_id, "accept")
    after = {i["case_id"]: i["version"] for i in hospital.client.get("/api/cases").json()["cases"]}
    assert after[case_id] != versions[case_id]  # the page fetches the card again
    for card in shown(hospital.client, case_id):
        assert "未送信" not in card
        assert '<span class="badge ok" data-status="accepted">受入可</span>' in card

    declined = store_case(hospital.store, a_case("d"))
    hospital.store.set_answer(declined, answer="decline", reason="満床", by="alice", sent=False)
    for card in shown(hospital.client, declined):
        assert "受入不可（満床・未送信）" in card
        assert 'class="badge ng"' not in card


# -- refused cases -----------------------------------------------------------------------


def test_refused_cases_banner_and_page(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト北病院", 35.7, 139.7)
        p.add_user(site, "alice")
        p.start(site)
        assert site.runtime is not None
        store = site.runtime.store
        with signed_in(site, "alice") as c:
            assert "受信できない事案があります" not in c.get("/").text
            store_case(store, a_case("ok"))
            store.add_rejection(
                event_id=7, case_id="c-7", code="envelope_bad_signature", device_id="dev-7"
            )
            store.add_rejection(event_id=8, case_id=None, code="closure:envelope_malformed")
            store.add_rejection(event_id=9, case_id="c-9", code="hub_new_code", device_id="dev-9")
            store.add_rejection(event_id=6, case_id="c-6", code="case_invalid", device_id="old")
            with store.session() as s:  # one from before the retention window
                old = s.exec(select(Rejection).where(Rejection.event_id == 6)).one()
                old.at = datetime.now(UTC) - timedelta(days=8)
                s.add(old)
                s.commit()

            for path in ("/", "/cases/list"):
                page = c.get(path)
                assert page.status_code == 200
                assert "受信できない事案があります（3件）" in page.text
                assert 'href="/rejections"' in page.text

            page = c.get("/rejections")
            assert page.status_code == 200
            rows = re.findall(r'<tr class="refusal".*?</tr>', page.text, re.S)
            assert len(rows) == 3
            by_code = {code: r for r in rows for code in re.findall(r'data-code="([^"]+)"', r)}
            assert "dev-7" in by_code["envelope_bad_signature"]
            assert "署名が合いません" in by_code["envelope_bad_signature"]
            assert "不明" in by_code["closure:envelope_malformed"]  # no device recorded
            assert (
                "中止（不搬送）の連絡を受け付けられませんでした"
                in by_code["closure:envelope_malformed"]
            )
            assert "事案を受信できませんでした（コード: hub_new_code）" in by_code["hub_new_code"]
            for r in rows:
                assert "送信元の消防本部に電話で確認してください" in r
            assert 'data-code="case_invalid"' not in page.text  # outside the window
            assert [a.action for a in store.audit_rows("rejections_viewed")] == [
                "rejections_viewed"
            ]
            # Staff only.
            anon = httpx.get(site.url + "/rejections", headers={"accept": "text/html"})
            assert anon.status_code == 303


# -- any value anywhere in a real case --------------------------------------------------

_DELETE = object()
_EXTREMES: list[Any] = [
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-02-30T10:00:00+09:00",
    "2026-01-01T00:00:00+23:59",
    "",
    "x" * 30_000,
    "\u202e<b>x</b>\u2028",
    "¹²³",
    "¹",
    "1" * 5000,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -0.0,
    10**400,
    -(10**400),
    2**63,
    True,
    None,
    [],
    {},
    [None],
    {"value": None},
    [{"coding": "x"}],
    _DELETE,
]
_values = st.one_of(
    st.sampled_from(_EXTREMES),
    st.floats(),
    st.integers(),
    st.text(max_size=20),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document: keys of objects and indexes of arrays."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*at, k)
            yield from _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*at, i)
            yield from _paths(v, (*at, i))


_BASE = make_bundle(
    "fuzz",
    DEVICE,
    vitals=(
        VitalSigns(
            observed_at=datetime(2026, 1, 1, tzinfo=UTC),
            systolic_mmhg=120,
            diastolic_mmhg=80,
            heart_rate_per_min=88,
            respiratory_rate_per_min=16,
            spo2_percent=98,
            body_temperature_c=36.5,
            gcs_total=15,
            jcs="0",
        ),
        VitalSigns(
            observed_at=datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
            systolic_mmhg=90,
            heart_rate_per_min=120,
            jcs="10",
        ),
    ),
)
_PATHS = sorted(set(_paths(_BASE)), key=repr)
# Every key of the document: a change to a key changes it wherever it occurs.
_KEYS = sorted({p[-1] for p in _PATHS if isinstance(p[-1], str)})
_where = st.one_of(st.sampled_from(_PATHS), st.sampled_from(_KEYS))


def _everywhere(node: Any, key: str, value: Any) -> None:
    if isinstance(node, dict):
        for k in list(node):
            if k == key:
                if value is _DELETE:
                    del node[k]
                else:
                    node[k] = copy.deepcopy(value)
            else:
                _everywhere(node[k], key, value)
    elif isinstance(node, list):
        for v in node:
            _everywhere(v, key, value)


def _mutated(changes: list[tuple[Any, Any]]) -> dict[str, Any]:
    bundle = copy.deepcopy(_BASE)
    for path, value in changes:
        if isinstance(path, str):
            _everywhere(bundle, path, value)
            continue
        parent: Any = bundle
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            last = path[-1]
            if isinstance(parent, dict) or (isinstance(parent, list) and last < len(parent)):
                if value is _DELETE:
                    del parent[last]
                else:
                    parent[last] = value
    return bundle


def test_any_mutation_of_a_real_case_renders_everywhere(hospital: Site) -> None:
    ids: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        changes=st.lists(st.tuples(_where, _values), min_size=1, max_size=5),
        sealed_at=st.sampled_from([1767225600, 0, -62135596801, 253402300800, 10**15, 2**63 - 1]),
        department=st.one_of(st.none(), st.sampled_from(["山奥村消防本部", "長" * 200])),
        suspect=st.booleans(),
    )
    def check(
        changes: list[tuple[Any, Any]],
        sealed_at: int,
        department: str | None,
        suspect: bool,
    ) -> None:
        case_id = store_case(
            hospital.store,
            _mutated(changes),
            sealed_at=sealed_at,
            sender_department=department,
            suspect=suspect,
        )
        ids.append(case_id)
        detail = hospital.client.get(f"/cases/{case_id}")
        assert detail.status_code == 200, detail.text[:300]
        # Each odd value shows as a placeholder in its own field: the card is whole.
        assert "data-unreadable" not in card_of(detail.text, case_id)
        assert "<b>x</b>" not in detail.text  # text from the case is escaped

    check()
    listing = hospital.client.get("/cases/list")
    assert listing.status_code == 200
    for case_id in ids[-100:]:  # the list holds the newest 100
        assert "data-unreadable" not in card_of(listing.text, case_id)
    assert hospital.client.get("/").status_code == 200
