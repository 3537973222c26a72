"""The complete case Bundle is valid FHIR R4B, and every LOINC code in it is one that
docs/case-record.md cites, with the same display name; the codes the issue requires are
there (GCS E/V/M and total, O2 flow, SpO2, glucose, heart and respiratory rate, BP,
temperature)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from sync.fhir_case import LOINC, build_case_bundle
from tests.hospital._world import full_record

DOC = Path(__file__).resolve().parents[2] / "docs" / "case-record.md"
REQUIRED = {
    "9269-2",
    "9267-6",
    "9270-0",
    "9268-4",
    "3151-8",
    "59408-5",
    "2339-0",
    "8867-4",
    "9279-1",
    "8480-6",
    "8462-4",
    "8310-5",
}


def cited() -> dict[str, str]:
    """code -> display, from the docs' LOINC table."""
    rows = re.findall(r"^\| (\d+-\d) \| ([^|]+?) \|", DOC.read_text(encoding="utf-8"), re.M)
    return dict(rows)


def loinc_codings(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [c for v in value for c in loinc_codings(v)]
    if not isinstance(value, dict):
        return []
    own = [value] if value.get("system") == LOINC and "code" in value else []
    return own + [c for v in value.values() for c in loinc_codings(v)]


@pytest.mark.parametrize("card", [True, False])
def test_complete_case_is_valid_and_its_loinc_codes_are_the_cited_ones(card: bool) -> None:
    bundle = build_case_bundle(full_record("case-codes", "dev-1", datetime.now(UTC), card=card))
    Bundle.model_validate(bundle)
    docs = cited()
    assert set(docs) >= REQUIRED
    used = loinc_codings([e["resource"] for e in bundle["entry"] if "summary" not in e])
    own = [c for c in used if c.get("display")]  # the summary's copies carry theirs
    assert own
    for coding in own:
        assert docs.get(coding["code"]) == coding["display"], coding
    assert {c["code"] for c in own} >= REQUIRED
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Procedure", "AllergyIntolerance", "Encounter", "Observation"} <= kinds
