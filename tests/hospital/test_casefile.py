"""What the dashboard reads from a case Bundle: vitals, ranges, summary; fuzzed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hospital.casefile import from_unix, read_case, time_text
from hospital.web.cards import sender_of
from hospital.web.rejections import refusal_ja
from sync.fhir_case import VitalSigns
from tests.hospital._world import make_bundle


def test_reads_what_the_device_sealed() -> None:
    now = datetime.now(UTC)
    bundle = make_bundle(
        "c1",
        "d1",
        vitals=(
            VitalSigns(observed_at=now - timedelta(minutes=5), systolic_mmhg=120, jcs="10"),
            VitalSigns(
                observed_at=now,
                systolic_mmhg=39,
                diastolic_mmhg=181,
                heart_rate_per_min=251,
                respiratory_rate_per_min=3,
                spo2_percent=49,
                body_temperature_c=43.1,
                gcs_total=3,
                jcs="300",
            ),
        ),
        consent="unconscious",
        assurance="face_check",
    )
    v = read_case("c1", bundle)
    assert v.chief_complaint == "胸痛"
    assert [s.at for s in v.vitals] == sorted((s.at for s in v.vitals), reverse=True)
    latest = v.vitals[0]
    flagged = {k for k, val in latest.values.items() if val.flagged}
    assert flagged == {
        "systolic",
        "diastolic",
        "pulse",
        "respiration",
        "spo2",
        "temperature",
    }
    assert v.vitals[1].values["systolic"].flagged is False
    assert v.jcs_ja == "III-300"
    assert v.gcs == "3"
    assert v.consent_ja.startswith("意識障害等により同意取得困難")
    assert v.assurance_ja == "顔写真で確認"  # the device's word (one vocabulary)
    assert v.allergies == ["ペニシリン系（発疹）"]
    assert v.conditions == ["2型糖尿病"]
    assert v.medications == ["メトホルミン塩酸塩錠250mg 1日2回朝夕食後"]
    assert v.crew_phones == ["090-0000-1111", "090-0000-2222"]
    assert v.call_at is not None
    assert v.patient_sex == "男性"
    # Health-check observations of the summary are not the patient's vitals now.
    assert len(v.vitals) == 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceType",
                    "entry",
                    "resource",
                    "fullUrl",
                    "section",
                    "code",
                    "coding",
                    "reference",
                    "valueString",
                    "valueQuantity",
                    "value",
                    "component",
                    "reaction",
                    "manifestation",
                    "extension",
                    "url",
                    "identifier",
                    "system",
                    "name",
                    "telecom",
                    "qualification",
                    "birthDate",
                    "dosage",
                    "clinicalStatus",
                    "effectiveDateTime",
                    "hasMember",
                    "period",
                    "deviceName",
                    "owner",
                    "contact",
                    "text",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
_kinds = st.sampled_from(
    [
        "Composition",
        "Observation",
        "Patient",
        "Encounter",
        "Device",
        "Practitioner",
        "AllergyIntolerance",
        "Condition",
        "MedicationStatement",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_kinds, _json), max_size=6), _json)
def test_never_raises_on_odd_bundles(resources: list[tuple[str, Any]], extra: Any) -> None:
    entries: list[Any] = []
    for i, (kind, body) in enumerate(resources):
        res = dict(body) if isinstance(body, dict) else {"x": body}
        res["resourceType"] = kind
        entries.append({"fullUrl": f"urn:uuid:{i}", "resource": res})
    entries.append(extra)
    for view in (
        read_case("c", {"resourceType": "Bundle", "entry": entries}),
        read_case("c", {"entry": extra}),
    ):
        _everything_shown(view)


def _everything_shown(view: Any) -> None:
    """Every text the card shows of ``view``: none may raise (one card, one field)."""
    texts = [view.consent_ja, view.assurance_ja, view.age_ja, view.jcs_ja, view.gcs]
    for vs in view.vitals:
        texts += [vs.time_ja, vs.jcs_ja, str(vs.jcs_abnormal), str(vs.shock_index)]
        texts += [vs.get(f.key).text() for f in view.vital_fields]
    sender = sender_of(view, "dev", "山奥村消防本部")
    texts += [sender.claim, str(sender.differs)]
    for t in texts:
        assert t is None or isinstance(t, str)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.one_of(st.none(), st.datetimes(timezones=st.timezones()), st.integers(), st.text()),
    st.one_of(st.integers(), st.floats(), st.none(), st.text(max_size=3)),
)
def test_times_always_have_a_text(moment: Any, unix: Any) -> None:
    assert time_text(moment, "%m/%d %H:%M")
    when = from_unix(unix)
    assert when is None or time_text(when)


def test_jcs_and_refusals_in_words() -> None:
    bundle = make_bundle("c1", "d1", vitals=(VitalSigns(observed_at=datetime.now(UTC), jcs="1"),))
    for e in bundle["entry"]:
        for c in e["resource"].get("valueCodeableConcept", {}).get("coding", []):
            c["code"] = "¹"  # as a device that does not use the builder may send it
    view = read_case("c1", bundle)
    assert view.vitals[0].jcs == "¹"
    assert view.vitals[0].jcs_abnormal is False  # a digit to str.isdigit, not to int()
    _everything_shown(view)
    assert "署名" in refusal_ja("envelope_bad_signature")
    assert refusal_ja("closure:envelope_malformed").startswith("中止（不搬送）の連絡を")
    assert "コード: something_new" in refusal_ja("something_new")


def test_every_refusal_the_hospital_records_has_its_own_words() -> None:
    """The receiving side's codes (hospital.intake, sync.CaseRefused) are explained to
    staff, not answered with the generic 「コード: …」 line."""
    from hospital.intake import CaseInvalid, CaseNotBundle, CaseNotJson, CaseStoreFailed
    from sync import CaseRefused

    for err in (CaseNotJson, CaseNotBundle, CaseInvalid, CaseStoreFailed, CaseRefused):
        assert "コード:" not in refusal_ja(err.code), err.code
        assert "コード:" not in refusal_ja(f"closure:{err.code}"), err.code
