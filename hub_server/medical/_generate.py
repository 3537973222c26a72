"""Deterministic synthetic patients: one :class:`random.Random` per patient.

Patient ``i`` of seed ``s`` depends only on ``(s, i, asof)``, so seeding is
reproducible, parallelisable, and the first patients do not change when more
are seeded.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from hub_server.medical._catalog import (
    ACUTE,
    ALLERGIES,
    CHECKUP_CENTRES,
    CHRONIC,
    CLINICS,
    DIALYSIS_CENTRES,
    HOSPITALS,
    PHARMACIES,
    SURGERIES,
)
from hub_server.medical._people import FEMALE_GIVEN, MALE_GIVEN, PLACES, SURNAMES
from hub_server.medical._record import Record

__all__ = ["HISTORY_DAYS", "generate_record", "patient_rng", "random_patient_key"]

# How far back a synthetic history goes: the 5-year full view plus a margin.
HISTORY_DAYS = 5 * 366 + 120

_AGE_BUCKETS = ((0, 14), (15, 39), (40, 64), (65, 74), (75, 99))
_AGE_WEIGHTS = (7, 15, 28, 20, 30)  # ambulance patients skew old
_ALLERGY_KEYS = tuple(ALLERGIES)
_ALLERGY_WEIGHTS = (30, 10, 12, 10, 4, 5, 6, 4, 4, 8, 3, 4)
_ACUTE_KEYS = tuple(ACUTE)
_GENERAL_CLINICS = ("c01", "c02", "c03", "c05", "c11")
# Specialist clinic per chronic condition; the rest go to the family clinic.
_SPECIALIST = {
    "bph": "c07",
    "oab": "c07",
    "dementia": "c10",
    "stroke": "c10",
    "epilepsy": "c10",
    "insomnia": "c06",
    "lbp": "c04",
    "osteoporosis": "c04",
    "ra": "c04",
    "copd": "c09",
    "asthma": "c09",
}
_SURGERY_KEYS = tuple(k for k in SURGERIES if k != "av_shunt")
_SURGERY_STAY = {"cataract": 0, "polypectomy": 1, "hernia": 4, "lapchole": 5, "appendectomy": 6}
_ACUTE_TREATMENT = {
    "gastroenteritis": "drip",
    "pneumonia": "drip",
    "contusion": "wound",
    "bronchitis": "nebulizer",
}


def patient_rng(rng_seed: int, index: int) -> random.Random:
    """The generator of patient ``index`` for ``rng_seed``."""
    return random.Random(rng_seed * 1_000_003 + index)


def random_patient_key(rng: random.Random) -> str:
    """An opaque id shaped like a certificate subject CN (no personal data)."""
    return f"SYN{rng.getrandbits(100):025X}"


def _iso(d: date) -> str:
    return d.isoformat()


def generate_record(rng: random.Random, asof: date) -> Record:
    """One realistic synthetic patient whose data ends at ``asof``."""
    lo, hi = rng.choices(_AGE_BUCKETS, _AGE_WEIGHTS)[0]
    age = rng.randint(lo, hi)
    birth = asof - timedelta(days=age * 365 + age // 4 + rng.randrange(365))
    sex = "1" if rng.random() < 0.48 else "2"
    family = rng.choice(SURNAMES)
    given = rng.choice(MALE_GIVEN if sex == "1" else FEMALE_GIVEN)
    pref, city, zip3, towns = rng.choice(PLACES)
    line = f"{rng.choice(towns)}{rng.randint(1, 5)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
    if rng.random() < 0.3:
        building = rng.choice(("さくら", "みどり", "ひかり", "あおば"))
        line += f" コーポ{building}{rng.randint(1, 5)}0{rng.randint(1, 9)}号室"
    history_start = asof - timedelta(days=HISTORY_DAYS)
    rec: dict[str, Any] = {
        "v": 1,
        "asof": _iso(asof),
        "p": {
            "family": family[0],
            "given": given[0],
            "family_kana": family[1],
            "given_kana": given[1],
            "birth_date": _iso(birth),
            "sex": sex,
            "postal_code": f"{zip3}-{rng.randrange(10000):04d}",
            "prefecture": pref,
            "city": city,
            "line": line,
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
    if rng.random() < 0.12:
        for k in set(rng.choices(_ALLERGY_KEYS, _ALLERGY_WEIGHTS, k=1 + (rng.random() < 0.2))):
            seen = asof - timedelta(days=rng.randrange(30, 3650))
            rec["allergies"].append({"k": k, "d": _iso(max(seen, birth))})
    onsets = _chronic(rng, rec, age, sex, birth, asof)
    family_clinic = rng.choice(_GENERAL_CLINICS if age >= 15 else ("c12",))
    pharmacy = rng.choice(PHARMACIES)
    _regimens(rng, rec, onsets, family_clinic, pharmacy, history_start, asof)
    if rng.random() < 0.003 * min(1.5, max(0.0, (age - 40) / 35)) * 3:
        _dialysis(rng, rec, history_start, asof)
    _acute(rng, rec, age, pharmacy, max(history_start, birth), asof)
    _surgeries(rng, rec, age, sex, max(history_start, birth), asof)
    if 40 <= age <= 74 and rng.random() < 0.55:
        _checks(rng, rec, sex, age, set(onsets), asof)
    return rec


def _chronic(
    rng: random.Random, rec: dict[str, Any], age: int, sex: str, birth: date, asof: date
) -> dict[str, date]:
    onsets: dict[str, date] = {}
    for key, cond in CHRONIC.items():
        if age < cond.min_age or (cond.sex is not None and cond.sex != sex):
            continue
        if cond.min_age <= 5:
            p = cond.prevalence
        else:
            p = cond.prevalence * min(1.3, ((age - cond.min_age) / (75 - cond.min_age)) ** 1.5)
        if rng.random() < p:
            years = max(1, min(age - cond.min_age, 25))
            onset = max(birth, asof - timedelta(days=rng.randrange(20, years * 365)))
            onsets[key] = onset
            rec["conditions"].append({"k": key, "d": _iso(onset), "s": "active"})
    return onsets


def _regimens(
    rng: random.Random,
    rec: dict[str, Any],
    onsets: dict[str, date],
    family_clinic: str,
    pharmacy: str,
    history_start: date,
    asof: date,
) -> None:
    by_clinic: dict[str, list[str]] = {}
    for key in onsets:
        clinic = _SPECIALIST.get(key, family_clinic) if rng.random() < 0.7 else family_clinic
        by_clinic.setdefault(clinic, []).append(key)
    for clinic, keys in by_clinic.items():
        start = max(history_start, min(onsets[k] for k in keys))
        rx: dict[str, str] = {}
        for key in keys:
            drugs = CHRONIC[key].drugs
            if not drugs:
                continue
            picks = drugs if key in ("hf", "ap") else (rng.choice(drugs),)
            if key == "htn" and rng.random() < 0.3:
                picks = tuple(rng.sample(drugs, 2))
            for drug in picks:
                rx.setdefault(drug, _iso(max(onsets[key], start)))
        # The last visit falls somewhere in the last interval before asof.
        every = rng.choice((14, 28, 28, 42, 56))
        end = asof - timedelta(days=rng.randrange(every))
        if end < start:
            continue
        tx = None
        if "copd" in keys and rng.random() < 0.3:
            tx = "home_oxygen"
        elif "lbp" in keys and rng.random() < 0.3:
            tx = "rehab"
        ep = _iso(asof - timedelta(days=rng.randrange(30, 700))) if rng.random() < 0.5 else None
        rec["regimens"].append(
            {
                "o": clinic,
                "ph": None if rng.random() < 0.15 else pharmacy,
                "s": _iso(start),
                "e": _iso(end),
                "i": every,
                "rx": sorted(([d, s] for d, s in rx.items()), key=lambda x: x[1]),
                "ep": ep,
                "tx": tx,
            }
        )


def _dialysis(rng: random.Random, rec: dict[str, Any], history_start: date, asof: date) -> None:
    start = asof - timedelta(days=rng.randrange(60, 15 * 365))
    centre = rng.choice(DIALYSIS_CENTRES)
    rec["conditions"].append({"k": "esrd", "d": _iso(start), "s": "active"})
    rec["dx"] = {"o": centre, "s": _iso(start), "e": _iso(asof - timedelta(days=rng.randrange(3)))}
    shunt = start - timedelta(days=rng.randrange(14, 60))
    if shunt >= history_start:
        hospital = rng.choice(HOSPITALS)
        rec["surgeries"].append({"d": _iso(shunt), "k": "av_shunt", "o": hospital})
        rec["visits"].append(
            {"d": _iso(shunt), "o": hospital, "c": "IMP", "end": _iso(shunt + timedelta(days=5))}
        )
    rec["regimens"].append(
        {
            "o": centre,
            "ph": None,
            "s": _iso(max(start, history_start)),
            "e": rec["dx"]["e"],
            "i": 28,
            "rx": [["lanthanum250", _iso(max(start, history_start))]],
            "ep": None,
            "tx": None,
        }
    )


def _acute(
    rng: random.Random, rec: dict[str, Any], age: int, pharmacy: str, since: date, asof: date
) -> None:
    span = (asof - since).days
    if span <= 0:
        return
    n = rng.choices((0, 1, 2, 3, 4), (35, 30, 18, 10, 7))[0]
    for _ in range(n):
        d = asof - timedelta(days=rng.randrange(span))
        key = rng.choice(_ACUTE_KEYS)
        iso = _iso(d)
        emergency = rng.random() < 0.15
        if key == "pneumonia" and age >= 65:
            org = rng.choice(HOSPITALS)
            stay = rng.randint(5, 14)
            end = _iso(min(asof, d + timedelta(days=stay)))
            rec["visits"].append({"d": iso, "o": org, "c": "IMP", "end": end, "r": key})
            rec["treatments"].append({"d": iso, "k": "oxygen", "o": org})
        else:
            org = (
                rng.choice(HOSPITALS)
                if emergency
                else rng.choice(CLINICS if age >= 15 else ("c12",))
            )
            rec["visits"].append(
                {"d": iso, "o": org, "c": "EMER" if emergency else "AMB", "r": key}
            )
        rec["conditions"].append({"k": key, "d": iso, "s": "resolved"})
        tx = _ACUTE_TREATMENT.get(key)
        if tx and rng.random() < 0.5:
            rec["treatments"].append({"d": iso, "k": tx, "o": org})
        drugs = ACUTE[key].drugs
        days = rng.choice((3, 5, 7))
        rx = [[drug, days] for drug in drugs[: rng.randint(1, len(drugs))]]
        rec["medications"].append({"d": iso, "o": pharmacy, "by": org, "rx": rx})
        if (asof - d).days < 400 and rng.random() < 0.4:
            rec["eprescriptions"].append({"d": iso, "o": org, "rx": rx})


def _surgeries(
    rng: random.Random, rec: dict[str, Any], age: int, sex: str, since: date, asof: date
) -> None:
    span = (asof - since).days
    if span <= 0 or rng.random() > 0.03 + age / 700:
        return
    key = rng.choice(_SURGERY_KEYS)
    if SURGERIES[key].sex not in (None, sex) or (key == "cesarean" and not 20 <= age <= 50):
        key = "appendectomy"
    d = asof - timedelta(days=rng.randrange(span))
    org = "c08" if key == "cataract" else rng.choice(HOSPITALS)
    stay = _SURGERY_STAY.get(key, rng.randint(7, 21))
    rec["surgeries"].append({"d": _iso(d), "k": key, "o": org})
    visit: dict[str, Any] = {"d": _iso(d), "o": org, "c": "IMP" if stay else "AMB"}
    if stay:
        visit["end"] = _iso(min(asof, d + timedelta(days=stay)))
    rec["visits"].append(visit)
    if key in ("tha", "tka", "hip_fracture"):
        rec["treatments"].append({"d": _iso(d + timedelta(days=2)), "k": "rehab", "o": org})


def _checks(
    rng: random.Random, rec: dict[str, Any], sex: str, age: int, conds: set[str], asof: date
) -> None:
    male = sex == "1"
    height = rng.gauss(170 if male else 157, 6) - max(0, age - 50) * 0.08
    bmi0 = rng.gauss(23.5 if male else 22, 3.2)
    org = rng.choice(CHECKUP_CENTRES)
    g = rng.gauss
    for years_ago in range(5):
        if rng.random() > 0.8:
            continue
        d = date(asof.year - years_ago, rng.randint(5, 11), rng.randint(1, 28))
        if d > asof:
            continue
        bmi = max(15.0, bmi0 + g(0, 0.6))
        weight = bmi * (height / 100) ** 2
        dm = "dm2" in conds
        values = [
            height,
            weight,
            bmi,
            bmi * 3.5 + g(4, 3),
            g(118 + age * 0.35 + (12 if "htn" in conds else 0), 12),
            g(74 + (6 if "htn" in conds else 0), 8),
            g(7.2, 0.8) if dm else g(5.6, 0.3),
            g(142, 25) if dm else g(95, 9),
            max(50.0, g(122, 28)),
            max(25.0, g(62 if not male else 54, 13)),
            max(35.0, g(115, 50)),
            max(10.0, g(23, 6)),
            max(6.0, g(21, 9)),
            max(8.0, g(32 if male else 20, 18)),
            max(0.4, g(1.5, 0.3) if "ckd" in conds else g(0.88 if male else 0.66, 0.12)),
            g(14.6 if male else 13.1, 1.0),
        ]
        rec["checks"].append({"d": _iso(d), "o": org, "v": [round(v, 1) for v in values]})
