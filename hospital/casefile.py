"""What the dashboard shows of a case: read from the case's FHIR document Bundle.

The Composition's sections say which resources are the chief complaint, the
vitals and the emergency summary (the summary carries health-check
Observations with the same LOINC codes as vitals: only the vitals section's
count as vitals). Nothing is refused here: unknown or missing parts show as
absent, out-of-range vitals are flagged (product.md's plausible ranges).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["RANGES", "CaseView", "Vital", "VitalSet", "read_case"]

LOINC = "http://loinc.org"
LOCAL = "https://kyukyu.example.jp/fhir"
CONSENT_EXT = f"{LOCAL}/StructureDefinition/consent"
ASSURANCE_EXT = f"{LOCAL}/StructureDefinition/identity-assurance"
TIME_EXT = f"{LOCAL}/StructureDefinition/ems-time"

# Plausible ranges: flag, never refuse (values outside are usually typing errors).
RANGES: dict[str, tuple[float, float]] = {
    "systolic": (40, 280),
    "diastolic": (20, 180),
    "pulse": (20, 250),
    "respiration": (4, 60),
    "spo2": (50, 100),
    "temperature": (30.0, 43.0),
}

CONSENT_JA = {
    "consented": "口頭同意あり",
    "unconscious": "意識障害等により同意取得困難（生命・身体保護のため閲覧）",
    "refused": "同意なし（閲覧しない）",
}
ASSURANCE_JA = {
    "face_check": "顔写真確認",
    "card_signature": "暗証番号＋カード署名",
    "collation_b_device_attested": "照合番号B（端末確認）",
}
JCS_JA = {
    "0": "0（清明）",
    "1": "I-1",
    "2": "I-2",
    "3": "I-3",
    "10": "II-10",
    "20": "II-20",
    "30": "II-30",
    "100": "III-100",
    "200": "III-200",
    "300": "III-300",
}
GENDER_JA = {"male": "男性", "female": "女性", "unknown": "不明", "other": "その他"}
_VITAL_CODES = {
    "8867-4": "pulse",
    "9279-1": "respiration",
    "59408-5": "spo2",
    "8310-5": "temperature",
    "9269-2": "gcs",
}


@dataclass
class Vital:
    key: str
    value: float | int | None
    flagged: bool = False

    def text(self) -> str:
        if self.value is None:
            return "—"
        v = self.value
        if isinstance(v, float) and v.is_integer() and self.key != "temperature":
            v = int(v)
        return f"{v:.1f}" if self.key == "temperature" else str(v)


@dataclass
class VitalSet:
    at: datetime | None
    values: dict[str, Vital] = field(default_factory=dict)
    jcs: str | None = None

    def get(self, key: str) -> Vital:
        return self.values.get(key) or Vital(key, None)


@dataclass
class CaseView:
    case_id: str
    call_at: datetime | None = None
    contact_at: datetime | None = None
    chief_complaint: str | None = None
    vitals: list[VitalSet] = field(default_factory=list)  # newest first
    allergies: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)
    consent: str | None = None
    assurance: str | None = None
    crew: list[str] = field(default_factory=list)
    crew_phones: list[str] = field(default_factory=list)
    ambulance: str | None = None
    fire_department: str | None = None
    patient_name: str | None = None
    patient_age: int | None = None
    patient_sex: str | None = None

    @property
    def consent_ja(self) -> str:
        if self.consent is None:
            return "記録なし"
        return CONSENT_JA.get(self.consent, self.consent)

    @property
    def assurance_ja(self) -> str:
        if self.assurance is None:
            return "記録なし"
        return ASSURANCE_JA.get(self.assurance, self.assurance)

    @property
    def latest(self) -> VitalSet | None:
        return self.vitals[0] if self.vitals else None

    @property
    def jcs_ja(self) -> str | None:
        for vs in self.vitals:
            if vs.jcs is not None:
                return JCS_JA.get(vs.jcs, vs.jcs)
        return None

    @property
    def gcs(self) -> str | None:
        for vs in self.vitals:
            g = vs.values.get("gcs")
            if g is not None and g.value is not None:
                return f"{int(g.value)}"
        return None

    def started_at(self) -> datetime | None:
        return self.call_at or self.contact_at


def _dt(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        out = datetime.fromisoformat(text)
    except ValueError:
        return None
    return out if out.tzinfo else out.replace(tzinfo=UTC)


def _l(value: Any) -> list[Any]:
    """A list, or nothing (the Bundle is signed, not necessarily well-formed)."""
    return value if isinstance(value, list) else []


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _codes(concept: Any) -> list[tuple[str, str]]:
    return [
        (str(c.get("system", "")), str(c.get("code", "")))
        for c in _l(_d(concept).get("coding"))
        if isinstance(c, dict)
    ]


def _text(concept: Any) -> str | None:
    concept = _d(concept)
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for c in _l(concept.get("coding")):
        if isinstance(c, dict) and isinstance(c.get("display"), str):
            return str(c["display"])
    return None


def _qty(res: dict[str, Any]) -> float | None:
    q = _d(res.get("valueQuantity"))
    value = q.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _flag(key: str, value: float | None) -> bool:
    if value is None or key not in RANGES:
        return False
    lo, hi = RANGES[key]
    return not lo <= value <= hi


def _age(birth: Any, today: date) -> int | None:
    if not isinstance(birth, str):
        return None
    try:
        b = date.fromisoformat(birth[:10])
    except ValueError:
        return None
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def _has_id(res: dict[str, Any], system: str) -> bool:
    return any(_d(i).get("system") == system for i in _l(res.get("identifier")))


def read_case(case_id: str, bundle: dict[str, Any], *, today: date | None = None) -> CaseView:
    view = CaseView(case_id=case_id)
    entries = [e for e in _l(_d(bundle).get("entry")) if isinstance(e, dict)]
    by_url: dict[str, dict[str, Any]] = {
        str(e.get("fullUrl")): e["resource"] for e in entries if isinstance(e.get("resource"), dict)
    }
    sections: dict[str, list[str]] = {}
    for res in by_url.values():
        if res.get("resourceType") == "Composition":
            for sec in _l(res.get("section")):
                sec = _d(sec)
                refs = [str(_d(r).get("reference")) for r in _l(sec.get("entry"))]
                for _, code in _codes(sec.get("code")):
                    sections.setdefault(code, []).extend(refs)

    for url in sections.get("10154-3", []):
        text = _s(by_url.get(url, {}).get("valueString"))
        if text is not None:
            view.chief_complaint = text

    sets: dict[str, VitalSet] = {}
    for url in sections.get("8716-3", []):
        res = by_url.get(url, {})
        if res.get("resourceType") != "Observation":
            continue
        when = str(res.get("effectiveDateTime", ""))
        vs = sets.setdefault(when, VitalSet(_dt(when)))
        vcode = {c for _, c in _codes(res.get("code"))}
        if "85354-9" in vcode:
            for comp in _l(res.get("component")):
                comp = _d(comp)
                ccodes = {c for _, c in _codes(comp.get("code"))}
                val = _qty(comp)
                for loinc, key in (("8480-6", "systolic"), ("8462-4", "diastolic")):
                    if loinc in ccodes:
                        vs.values[key] = Vital(key, val, _flag(key, val))
        elif "jcs" in vcode:
            vcodes = _codes(res.get("valueCodeableConcept"))
            if vcodes:
                vs.jcs = vcodes[0][1]
        else:
            for code, key in _VITAL_CODES.items():
                if code in vcode:
                    val = _qty(res)
                    vs.values[key] = Vital(key, val, _flag(key, val))
    view.vitals = sorted(
        sets.values(), key=lambda v: v.at or datetime.min.replace(tzinfo=UTC), reverse=True
    )

    for url in sections.get("60591-5", []):
        res = by_url.get(url, {})
        kind = res.get("resourceType")
        if kind == "AllergyIntolerance":
            text = _text(res.get("code")) or "（名称不明）"
            reactions = [
                t
                for r in _l(res.get("reaction"))
                for m in _l(_d(r).get("manifestation"))
                if (t := _text(m))
            ]
            view.allergies.append(f"{text}（{'、'.join(reactions)}）" if reactions else text)
        elif kind == "Condition":
            status = [c for _, c in _codes(res.get("clinicalStatus"))]
            text = _text(res.get("code")) or "（名称不明）"
            if status and status[0] not in ("active", "recurrence", "relapse"):
                text += "（治癒・寛解）"
            view.conditions.append(text)
        elif kind in ("MedicationStatement", "MedicationRequest"):
            text = _text(res.get("medicationCodeableConcept")) or "（薬剤名不明）"
            dosage = _l(res.get("dosage")) or _l(res.get("dosageInstruction"))
            sig = _s(_d(dosage[0]).get("text")) if dosage else None
            line = f"{text} {sig}" if sig else text
            if line not in view.medications:
                view.medications.append(line)

    today = today or datetime.now(UTC).date()
    for res in by_url.values():
        kind = res.get("resourceType")
        if kind == "Encounter" and _has_id(res, f"{LOCAL}/case-id"):
            for ext in _l(res.get("extension")):
                ext = _d(ext)
                ext_url = ext.get("url")
                if ext_url == CONSENT_EXT:
                    view.consent = _s(ext.get("valueCode"))
                elif ext_url == ASSURANCE_EXT:
                    view.assurance = _s(ext.get("valueCode"))
                elif ext_url == f"{TIME_EXT}-call-received":
                    view.call_at = _dt(ext.get("valueDateTime"))
                elif ext_url == f"{TIME_EXT}-patient-contact":
                    view.contact_at = _dt(ext.get("valueDateTime"))
            if view.contact_at is None:
                view.contact_at = _dt(_d(res.get("period")).get("start"))
        elif kind == "Device" and _has_id(res, f"{LOCAL}/device-id"):
            names = _l(res.get("deviceName"))
            if names:
                view.ambulance = _s(_d(names[0]).get("name"))
            view.fire_department = _s(_d(res.get("owner")).get("display"))
            view.crew_phones += [
                str(_d(c)["value"]) for c in _l(res.get("contact")) if _d(c).get("value")
            ]
        elif kind == "Practitioner" and _has_id(res, f"{LOCAL}/staff-id"):
            role = next((_text(_d(q).get("code")) for q in _l(res.get("qualification"))), None)
            name = next((_s(_d(n).get("text")) for n in _l(res.get("name"))), None)
            view.crew.append(" ".join(x for x in (role, name) if x) or "隊員")
            view.crew_phones += [
                str(_d(t)["value"]) for t in _l(res.get("telecom")) if _d(t).get("value")
            ]
        elif kind == "Patient" and view.patient_name is None:
            names = _l(res.get("name"))
            if names:
                view.patient_name = _s(_d(names[0]).get("text"))
            view.patient_age = _age(res.get("birthDate"), today)
            view.patient_sex = GENDER_JA.get(str(res.get("gender")))
    return view
