"""A typical emergency patient for the summary tests: 5 conditions, 10 drugs.

A 79-year-old with hypertension, heart failure, atrial fibrillation, type 2 diabetes and
reflux, seen every 4 weeks at a cardiology clinic and a family clinic and every 8 weeks
at a diabetes clinic, all dispensed at one pharmacy; one allergy, a cataract operation
and a health check. Written as a stored record (``hub_server.medical._record``) so the
real platform builds the summary, and given a virtual card by the world's test CA.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.x509.oid import NameOID
from sqlalchemy import text

from edge.card_sim import CardImage, Holder
from tests.edge._world import World

CONDITIONS = ("htn", "hf", "af", "dm2", "gerd")
DRUGS = (
    "amlodipine5",
    "candesartan8",
    "furosemide20",
    "bisoprolol2_5",
    "apixaban5",
    "metformin250",
    "sitagliptin50",
    "lansoprazole15",
    "mgo330",
    "zolpidem5",
)
# 特定健診 values in HC_FIELDS order (height ... haemoglobin)
CHECK = (163.2, 61.0, 22.9, 84.1, 138, 82, 7.1, 141, 118, 52, 160, 24, 20, 31, 0.9, 13.8)


def _iso(d: date) -> str:
    return d.isoformat()


def typical_record(asof: date) -> dict[str, Any]:
    """The stored record, its data ending at ``asof``."""
    long_ago = asof - timedelta(days=9 * 365)

    def regimen(clinic: str, every: int, last: int, drugs: tuple[str, ...]) -> dict[str, Any]:
        return {
            "o": clinic,
            "ph": "p02",
            "s": _iso(long_ago),
            "e": _iso(asof - timedelta(days=last)),
            "i": every,
            "rx": [[d, _iso(long_ago)] for d in drugs],
            "ep": _iso(asof - timedelta(days=400)),
            "tx": None,
        }

    return {
        "v": 1,
        "asof": _iso(asof),
        "p": {
            "family": "救急",
            "given": "太郎",
            "family_kana": "キュウキュウ",
            "given_kana": "タロウ",
            "birth_date": "1947-04-12",
            "sex": "1",
            "postal_code": "100-0005",
            "prefecture": "東京都",
            "city": "千代田区",
            "line": "丸の内1丁目1番1号",
        },
        "allergies": [{"k": "penicillin", "d": _iso(asof - timedelta(days=3000))}],
        "conditions": [
            {"k": k, "d": _iso(long_ago + timedelta(days=100 * i)), "s": "active"}
            for i, k in enumerate(CONDITIONS)
        ],
        "regimens": [
            regimen("c03", 28, 5, DRUGS[:5]),
            regimen("c05", 56, 20, DRUGS[5:7]),
            regimen("c01", 28, 12, DRUGS[7:]),
        ],
        "dx": None,
        "visits": [],
        "eprescriptions": [],
        "medications": [],
        "surgeries": [{"d": _iso(asof - timedelta(days=700)), "k": "cataract", "o": "h01"}],
        "treatments": [],
        "dialysis": [],
        "checks": [
            {
                "d": _iso(asof - timedelta(days=200)),
                "o": "k01",
                "v": list(CHECK),
            }
        ],
    }


def typical_patient(world: World) -> CardImage:
    """A new card for the typical patient, whose record the world's platform now holds."""
    holder = Holder(
        name="救急\u3000太郎",
        address="東京都千代田区丸の内1丁目1番1号",
        birth_date=date(1947, 4, 12),
        sex="1",
        security_code="4321",
    )
    image = world.ca.issue_card(holder=holder, key_factory=world.keys)
    cn = image.auth_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    record = typical_record(datetime.now(ZoneInfo("Asia/Tokyo")).date())
    # The synthetic source's one table (hub_server.medical keeps it private): one row.
    with world.state.medical_source.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO med_patient (patient_key, record) VALUES (:k, :r)"),
            {"k": str(cn), "r": json.dumps(record, ensure_ascii=False)},
        )
    return image
