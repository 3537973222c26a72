"""The case Bundle is valid FHIR R4B and carries the right codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from sync.fhir_case import JCS_SYSTEM, LOINC, UCUM, VitalSigns, build_case_bundle
from tests.sync._data import PATIENT_NAME, SUMMARY_TEXT, case_record


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_loinc(bundle: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [
        o
        for o in resources(bundle, "Observation")
        if any(c["system"] == LOINC and c["code"] == code for c in o["code"]["coding"])
    ]


def test_full_case_validates_as_r4b_document() -> None:
    bundle = build_case_bundle(case_record())
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document"
    assert parsed.entry[0].resource.get_resource_type() == "Composition"
    assert bundle["identifier"]["value"] == "case-0001"


def test_minimal_case_validates_and_patient_is_empty() -> None:
    bundle = build_case_bundle(case_record(full=False))
    Bundle.model_validate(bundle)
    (patient,) = resources(bundle, "Patient")
    assert patient == {"resourceType": "Patient"}


def test_vitals_have_loinc_and_ucum() -> None:
    bundle = build_case_bundle(case_record())
    (bp,) = by_loinc(bundle, "85354-9")
    comps = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert comps["8480-6"] == {"value": 150, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
    assert comps["8462-4"]["value"] == 92
    expected = {
        "8867-4": "/min",
        "9279-1": "/min",
        "59408-5": "%",
        "8310-5": "Cel",
        "9269-2": "{score}",
    }
    for code, unit in expected.items():
        obs = by_loinc(bundle, code)
        assert obs, code
        assert obs[0]["valueQuantity"]["code"] == unit
        assert obs[0]["category"][0]["coding"][0]["code"] == "vital-signs"
    assert len(by_loinc(bundle, "8867-4")) == 2  # two vitals sets
    jcs = [
        o
        for o in resources(bundle, "Observation")
        if o.get("valueCodeableConcept", {}).get("coding", [{}])[0].get("system") == JCS_SYSTEM
    ]
    assert [o["valueCodeableConcept"]["coding"][0]["code"] for o in jcs] == ["1", "0"]


def test_each_vitals_set_is_one_panel_with_its_time() -> None:
    """Two sets (the same second, too): two vital-signs panels, each with its own time and
    its own values as members, valid R4B, listed in the バイタルサイン section."""
    record = case_record()
    same = record.vitals[1].observed_at
    record = replace(
        record,
        vitals=(*record.vitals, VitalSigns(observed_at=same, systolic_mmhg=300, jcs="300")),
    )
    bundle = build_case_bundle(record)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document"
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    panels = by_loinc(bundle, "85353-1")
    assert [p["effectiveDateTime"] for p in panels] == [
        v.observed_at.isoformat() for v in record.vitals
    ]
    members = []
    for panel in panels:
        assert panel["category"][0]["coding"][0]["code"] == "vital-signs"
        refs = [m["reference"] for m in panel["hasMember"]]
        assert all(by_url[r]["effectiveDateTime"] == panel["effectiveDateTime"] for r in refs)
        members.append([by_url[r] for r in refs])
    first, second, third = members
    assert len(first) == 7  # BP panel, pulse, resp, SpO2, temp, GCS, JCS
    assert [m["valueQuantity"]["value"] for m in second if "valueQuantity" in m] == [100]
    (bp,) = [m for m in third if "component" in m]
    assert bp["component"][0]["valueQuantity"]["value"] == 300
    # No member belongs to two sets; the section lists every panel and every member.
    urls = [m["reference"] for p in panels for m in p["hasMember"]]
    assert len(urls) == len(set(urls))
    (comp,) = resources(bundle, "Composition")
    (vitals,) = [x for x in comp["section"] if x["title"] == "バイタルサイン"]
    listed = [e["reference"] for e in vitals["entry"]]
    panel_urls = [u for u, r in by_url.items() if r in panels]
    assert set(listed) == set(urls) | set(panel_urls)


def test_patient_crew_device_summary_and_times() -> None:
    bundle = build_case_bundle(case_record())
    (patient,) = resources(bundle, "Patient")
    assert patient["name"][0]["text"] == PATIENT_NAME
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1951-03-04"
    assert len(resources(bundle, "Practitioner")) == 2
    (device,) = resources(bundle, "Device")
    assert device["identifier"][0]["value"] == "dev-1"
    (enc,) = resources(bundle, "Encounter")
    assert enc["class"]["code"] == "EMER"
    assert len(enc["extension"]) == 4
    (allergy,) = resources(bundle, "AllergyIntolerance")
    assert allergy["code"]["text"] == SUMMARY_TEXT
    patient_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert allergy["patient"]["reference"] == patient_url
    (comp,) = resources(bundle, "Composition")
    titles = [s["title"] for s in comp["section"]]
    assert titles == ["主訴", "バイタルサイン", "救急時サマリー"]
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for s in comp["section"]:
        for ref in s["entry"]:
            assert ref["reference"] in urls


def references(value: Any) -> list[str]:
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    if isinstance(value, dict):
        own = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return own + [r for v in value.values() for r in references(v)]
    return []


def test_every_reference_resolves_inside_the_bundle() -> None:
    bundle = build_case_bundle(case_record())
    urls = {e["fullUrl"] for e in bundle["entry"]}
    refs = references(bundle)
    assert len(refs) > 20
    assert set(refs) <= urls
    (med,) = resources(bundle, "MedicationStatement")
    (org,) = resources(bundle, "Organization")
    org_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is org)
    assert med["informationSource"]["reference"] == org_url


def test_no_my_number_like_digits() -> None:
    import json
    import re

    text = json.dumps(build_case_bundle(case_record()))
    # Random urn:uuid references end in 12 hex digits, all decimal about once
    # in 280 UUIDs: they are ours, not a My Number, so they are taken out first.
    uuids = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert uuids.search(text)
    assert not re.search(r"\d{12}", uuids.sub("urn:uuid:x", text))


def test_bad_inputs_are_refused() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        VitalSigns(observed_at=at, jcs="4")
    with pytest.raises(ValueError):
        VitalSigns(observed_at=at, gcs_total=2)
