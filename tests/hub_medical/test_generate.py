"""The generator: deterministic, and every generated patient makes valid bundles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub_server.medical import build_summary_bundle
from hub_server.medical._catalog import ACUTE, ALLERGIES, CHRONIC, DRUGS, ORGS, SURGERIES
from hub_server.medical._generate import generate_record, patient_rng, random_patient_key

from ._helpers import validate

ASOF = date(2026, 11, 20)


def test_same_seed_same_patient_different_seed_different() -> None:
    a = [generate_record(patient_rng(11, i), ASOF) for i in range(20)]
    b = [generate_record(patient_rng(11, i), ASOF) for i in range(20)]
    c = [generate_record(patient_rng(12, i), ASOF) for i in range(20)]
    assert a == b
    assert a != c
    keys = {random_patient_key(patient_rng(11, i)) for i in range(1000)}
    assert len(keys) == 1000
    assert all(k.startswith("SYN") and k.isalnum() for k in keys)


def test_catalog_keys_resolve() -> None:
    for cond in (*CHRONIC.values(), *ACUTE.values()):
        assert all(d in DRUGS for d in cond.drugs)
    for i in range(300):
        rec = generate_record(patient_rng(0, i), ASOF)
        assert all(a["k"] in ALLERGIES for a in rec["allergies"])
        assert all(s["k"] in SURGERIES for s in rec["surgeries"])
        orgs = [v["o"] for v in rec["visits"]] + [r["o"] for r in rec["regimens"]]
        assert all(o in ORGS for o in orgs)
        assert rec["asof"] == ASOF.isoformat()


@settings(max_examples=25, deadline=None)
@given(
    rng_seed=st.integers(min_value=0, max_value=2**32),
    index=st.integers(min_value=0, max_value=10**6),
    lag_days=st.integers(min_value=-30, max_value=400),
    full=st.booleans(),
)
def test_every_generated_patient_makes_a_valid_bundle(
    rng_seed: int, index: int, lag_days: int, full: bool
) -> None:
    rec = generate_record(patient_rng(rng_seed, index), ASOF)
    now = datetime(2026, 11, 20, 3, tzinfo=UTC) + timedelta(days=lag_days)
    validate(build_summary_bundle(rec, now=now, full=full))


def test_many_patients_validate() -> None:
    now = datetime(2026, 11, 20, 3, tzinfo=UTC)
    for i in range(40):
        rec = generate_record(patient_rng(2, i), ASOF)
        for full in (False, True):
            validate(build_summary_bundle(rec, now=now, full=full))
