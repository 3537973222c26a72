"""The synthetic source on SQLite and PostgreSQL: seeding, look-up, cards."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID
from sqlalchemy import text

import hub_server.medical as medical
from edge.card_sim import CardImage, KeyPool, TestCA
from hub_server.main import http_status
from hub_server.medical import (
    MedicalRecordUnreadable,
    MedicalSource,
    MedicalSourceUnavailable,
    open_source,
    seed,
)
from hub_server.medical._store import patients_table
from kyukyu.testing import seed_with_cards

from ._helpers import section, validate

ASOF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


def test_public_api() -> None:
    assert len(set(medical.__all__)) == len(medical.__all__)
    for name in ("MedicalSource", "open_source", "seed", "SeedReport", "build_summary_bundle"):
        assert name in medical.__all__
    assert all(hasattr(medical, name) for name in medical.__all__)


def test_seed_and_look_up(db_url: str) -> None:
    report = seed(db_url, patients=120, rng_seed=7, asof=ASOF)
    assert report.patients == 120
    assert report.asof == ASOF
    source = open_source(db_url)
    assert isinstance(source, MedicalSource)
    assert source.count() == 120
    keys = source.patient_keys()
    assert len(set(keys)) == 120
    for key in keys[:12]:
        for full in (False, True):
            bundle = source.summary(key, now=NOW, full=full)
            assert bundle is not None
            validate(bundle)
    assert source.summary("SYN-NOT-A-PATIENT", now=NOW) is None
    assert source.summary("", now=NOW) is None
    source.engine.dispose()


def test_reseeding_replaces_and_is_deterministic(db_url: str) -> None:
    seed(db_url, patients=50, rng_seed=3, asof=ASOF)
    source = open_source(db_url)
    first = {k: source.record(k) for k in source.patient_keys()}
    seed(db_url, patients=50, rng_seed=3, asof=ASOF)
    assert {k: source.record(k) for k in source.patient_keys()} == first
    seed(db_url, patients=30, rng_seed=4, asof=ASOF)
    assert source.count() == 30
    assert not set(source.patient_keys()) & set(first)
    source.engine.dispose()


def test_population_is_realistic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pop.db'}"
    seed(url, patients=2000, rng_seed=0, asof=ASOF)
    source = open_source(url)
    records = [source.record(k) for k in source.patient_keys()]
    assert all(r is not None for r in records)
    kanji = {r["p"]["family"] for r in records if r}
    assert {"佐藤", "鈴木"} <= kanji
    assert all(r["p"]["family_kana"].isascii() is False for r in records if r)

    def share(pred: object) -> float:
        return sum(1 for r in records if r and pred(r)) / len(records)  # type: ignore[operator]

    assert 0.05 < share(lambda r: r["allergies"]) < 0.25
    assert 0.3 < share(lambda r: any(c["k"] == "htn" for c in r["conditions"])) < 0.6
    assert 0.001 < share(lambda r: r["dx"]) < 0.03  # dialysis patients exist, rarely
    assert 0.2 < share(lambda r: r["checks"]) < 0.6
    assert share(lambda r: r["surgeries"]) > 0.03
    drugs = {d for r in records if r for reg in r["regimens"] for d, _ in reg["rx"]}
    assert {"amlodipine5", "warfarin1", "metformin250"} <= drugs
    ages = [(ASOF - date.fromisoformat(r["p"]["birth_date"])).days // 365 for r in records if r]
    assert min(ages) >= 0
    assert max(ages) <= 100
    assert all(len(json.dumps(r, ensure_ascii=False)) < 8000 for r in records)
    source.engine.dispose()


def test_seed_issues_cards_linked_to_patients(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cards.db'}"
    cards_dir, ca_dir = tmp_path / "cards", tmp_path / "ca"
    report = seed_with_cards(
        url,
        patients=40,
        rng_seed=1,
        asof=ASOF,
        cards=2,
        cards_dir=cards_dir,
        ca_dir=ca_dir,
        key_factory=KeyPool(2),
    )
    assert report.ca_dir == ca_dir
    assert len(report.cards) == 2
    TestCA.load(ca_dir)  # the CA was created and saved
    source = open_source(url)
    for card in report.cards:
        image = CardImage.load(card.path)
        cn = image.auth_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == card.patient_key
        bundle = source.summary(card.patient_key, now=NOW)
        assert bundle is not None
        validate(bundle)
        patient = bundle["entry"][1]["resource"]
        kanji = patient["name"][0]
        assert image.holder.name == f"{kanji['family']}\u3000{kanji['given'][0]}"
        assert image.holder.birth_date.isoformat() == patient["birthDate"]
        assert image.holder.address == patient["address"][0]["text"]
        # Demo cards go to patients with something to show.
        assert section(bundle, "conditions") or section(bundle, "allergies")
    assert source.count() == 40
    source.engine.dispose()


def test_seed_links_patients_it_is_given_keys_for(tmp_path: Path) -> None:
    """The source makes no identity itself: the caller's ``link`` names the key."""
    url = f"sqlite:///{tmp_path / 'linked.db'}"
    people: list[dict[str, object]] = []

    def link(person: object, rng: object) -> str:
        assert isinstance(person, dict)
        people.append(person)
        return f"LINKED-{len(people)}"

    report = seed(url, patients=30, rng_seed=2, asof=ASOF, linked=2, link=link)
    assert report.linked_keys == ("LINKED-1", "LINKED-2")
    assert {"family", "given", "birth_date", "sex"} <= set(people[0])
    source = open_source(url)
    assert source.summary("LINKED-1", now=NOW) is not None
    assert source.count() == 30
    source.engine.dispose()


def test_seed_refuses_bad_arguments(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ValueError):
        seed_with_cards(url, patients=1, cards=2, cards_dir=tmp_path)
    with pytest.raises(ValueError):
        seed_with_cards(url, patients=3, cards=1)
    with pytest.raises(ValueError):
        seed(url, patients=3, linked=1)
    with pytest.raises(ValueError):
        seed(url, patients=1, linked=2, link=lambda person, rng: "K")
    with pytest.raises(ValueError):
        seed(url, patients=-1)


def test_no_patient_data_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    caplog.set_level(logging.DEBUG)
    seed(url, patients=30, rng_seed=5, asof=ASOF)
    source = open_source(url)
    secrets: set[str] = set()
    for key in source.patient_keys():
        rec = source.record(key)
        assert rec is not None
        source.summary(key, now=NOW, full=True)
        secrets |= {key, rec["p"]["family"] + rec["p"]["given"], rec["p"]["birth_date"]}
        secrets |= {rec["p"]["line"]}
    text = caplog.text
    assert not [s for s in secrets if s in text]
    source.engine.dispose()


def test_bundle_never_carries_my_number_or_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mn.db'}"
    seed(url, patients=20, rng_seed=9, asof=ASOF)
    source = open_source(url)
    for key in source.patient_keys():
        bundle = source.summary(key, now=NOW, full=True)
        text = json.dumps(bundle, ensure_ascii=False)
        assert key not in text
        patient = bundle["entry"][1]["resource"] if bundle else {}
        assert set(patient) <= {
            "resourceType",
            "id",
            "meta",
            "name",
            "gender",
            "birthDate",
            "address",
        }
    source.engine.dispose()


def test_first_patients_do_not_change_when_more_are_seeded(tmp_path: Path) -> None:
    small, large = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 'l.db'}"
    seed(small, patients=10, rng_seed=2, asof=ASOF)
    seed(large, patients=60, rng_seed=2, asof=ASOF)
    a, b = open_source(small), open_source(large)
    assert set(a.patient_keys()) < set(b.patient_keys())
    assert all(a.record(k) == b.record(k) for k in a.patient_keys())
    a.engine.dispose()
    b.engine.dispose()


def test_typed_errors_when_the_store_fails(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    seed(db_url, patients=3, rng_seed=1, asof=ASOF)
    source = open_source(db_url)
    key = source.patient_keys()[0]
    with source.engine.begin() as conn:
        conn.execute(patients_table.insert(), [{"patient_key": "BROKEN", "record": "{not json"}])
        conn.execute(patients_table.insert(), [{"patient_key": "OLD", "record": '{"v": 0}'}])
        conn.execute(patients_table.insert(), [{"patient_key": "HALF", "record": '{"v": 1}'}])
    for bad in ("BROKEN", "OLD", "HALF"):
        with pytest.raises(MedicalRecordUnreadable) as info:
            source.summary(bad, now=NOW)
        assert info.value.code == "medical_record_unreadable"
    with source.engine.begin() as conn:
        conn.execute(text("DROP TABLE med_patient"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MedicalSourceUnavailable) as err:
        source.summary(key, now=NOW)
    assert http_status(err.value) == 503
    assert err.value.to_body()["error"]["message_ja"].startswith("医療情報")
    assert key not in caplog.text
    source.engine.dispose()
    open_source(db_url).engine.dispose()  # recreates the table for the next test
