"""The case as a FHIR R4B document Bundle (what the hospital receives).

Only what was verified goes into the Patient (the card's text AP attributes
after their integrity check); nothing is guessed. The 12-digit My Number never
appears. Vitals use LOINC codes and UCUM units; JCS (Japan Coma Scale) has no
LOINC code and uses a local code system. Each set of vitals is one vital-signs
panel Observation (85353-1) at the time the set was taken, its values as
``hasMember``; the バイタルサイン section lists each panel followed by its members.

The case's one vocabulary (codes, labels, ranges) is defined in ``sync.vocabulary``,
which imports nothing heavy (the device's first screen needs it), and exported here
too: ``sync.fhir_case`` is where the rest of the project takes it from.

The builder needs no FHIR library; tests validate the output with
``fhir.resources`` (R4B).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sync.vocabulary import (
    ACT_CODE,
    ASSURANCE_EXT,
    ASSURANCE_LABELS,
    BP_PANEL,
    CASE_ID_SYSTEM,
    CHIEF_COMPLAINT,
    CHIEF_COMPLAINT_SECTION,
    CONSENT_EXT,
    CONSENT_LABELS,
    DEVICE_ID_SYSTEM,
    EMS_TIME,
    EMS_TIMES,
    ESTIMATED_AGE_EXT,
    ESTIMATED_SEX_EXT,
    ETA_EXT,
    GENDER_LABELS,
    HEARD_KINDS,
    HEARD_SECTION,
    JCS_CHOICES,
    JCS_LEVELS,
    JCS_SYSTEM,
    LOCAL_OBS_SYSTEM,
    LOINC,
    OBS_CATEGORY,
    PATIENT_SOURCE_EXT,
    SHOCK_INDEX,
    SOURCE_SYSTEM,
    STAFF_ID_SYSTEM,
    SUMMARY_SECTION,
    SUMMARY_SECTIONS,
    SUMMARY_STATUS_EXT,
    SUMMARY_STATUSES,
    TIME_EXT,
    TREATMENT_SYSTEM,
    TREATMENTS,
    TREATMENTS_SECTION,
    UCUM,
    VITAL_FIELD,
    VITAL_FIELDS,
    VITALS_PANEL,
    VITALS_SECTION,
    Coding,
    EmsTime,
    Label,
    Sex,
    VitalField,
    _coding,
    jcs_parts,
)

__all__ = [
    "ASSURANCE_EXT",
    "ASSURANCE_LABELS",
    "BP_PANEL",
    "CASE_ID_SYSTEM",
    "CHIEF_COMPLAINT",
    "CHIEF_COMPLAINT_SECTION",
    "CONSENT_EXT",
    "CONSENT_LABELS",
    "DEVICE_ID_SYSTEM",
    "EMS_TIME",
    "EMS_TIMES",
    "GENDER_LABELS",
    "JCS_CHOICES",
    "JCS_LEVELS",
    "JCS_SYSTEM",
    "LOCAL_OBS_SYSTEM",
    "LOINC",
    "SHOCK_INDEX",
    "STAFF_ID_SYSTEM",
    "SUMMARY_SECTION",
    "SUMMARY_SECTIONS",
    "TIME_EXT",
    "UCUM",
    "VITALS_PANEL",
    "VITALS_SECTION",
    "VITAL_FIELD",
    "VITAL_FIELDS",
    "CaseRecord",
    "CaseTimes",
    "Coding",
    "CrewMember",
    "DeviceInfo",
    "EmsTime",
    "Eta",
    "Label",
    "PatientEstimate",
    "Treatment",
    "VerifiedPatient",
    "VitalField",
    "VitalSigns",
    "build_case_bundle",
]

_GENDER = {"1": "male", "2": "female", "9": "unknown"}


@dataclass(frozen=True)
class VerifiedPatient:
    """Attributes read from the card and verified (None: not verified, not sent)."""

    name: str | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    address: str | None = None


@dataclass(frozen=True)
class PatientEstimate:
    """Age and sex the crew estimated (推定) for a patient nobody could identify."""

    age_years: int | None = None
    sex: str | None = None  # FHIR gender: male | female


@dataclass(frozen=True)
class VitalSigns:
    """One set of vitals measured at ``observed_at``; absent values are omitted.

    One attribute per row of ``VITAL_FIELDS`` (``VitalField.attr``). The GCS total is
    computed from E, V and M when all three are known.
    """

    observed_at: datetime
    systolic_mmhg: float | None = None
    diastolic_mmhg: float | None = None
    heart_rate_per_min: float | None = None
    respiratory_rate_per_min: float | None = None
    spo2_percent: float | None = None
    o2_flow_l_min: float | None = None  # 0: room air (室内気)
    body_temperature_c: float | None = None
    jcs: str | None = None  # a JCS code: level and suffixes (30RI)
    gcs_eye: int | None = None
    gcs_verbal: int | None = None
    gcs_motor: int | None = None
    gcs_total: int | None = None
    pupil_left_mm: float | None = None
    pupil_right_mm: float | None = None
    pupil_left_reflex: str | None = None
    pupil_right_reflex: str | None = None
    ecg_rhythm: str | None = None
    glucose_mg_dl: float | None = None
    stroke_cpss: str | None = None

    def __post_init__(self) -> None:
        if self.jcs is not None and jcs_parts(self.jcs) is None:
            raise ValueError("JCS must be one of " + ", ".join(JCS_LEVELS) + " with R/I/A")
        for f in VITAL_FIELDS:
            value = getattr(self, f.attr)
            if f.choices and value is not None and not f.valid_choice(value):
                raise ValueError(f"{f.key} must be one of its choices")
        parts = (self.gcs_eye, self.gcs_verbal, self.gcs_motor)
        for part, top in zip(parts, (4, 5, 6), strict=True):
            if part is not None and not 1 <= part <= top:
                raise ValueError("GCS is E1-4, V1-5, M1-6")
        if self.gcs_total is None and all(p is not None for p in parts):
            object.__setattr__(self, "gcs_total", sum(p for p in parts if p is not None))
        if self.gcs_total is not None and not 3 <= self.gcs_total <= 15:
            raise ValueError("GCS total is 3..15")


@dataclass(frozen=True)
class Treatment:
    """One 処置 at ``at`` (a key of ``TREATMENTS``; ``note``: O2 flow, その他's text)."""

    code: str
    at: datetime
    note: str | None = None

    def __post_init__(self) -> None:
        if self.code not in TREATMENTS:
            raise ValueError("treatment must be one of " + ", ".join(TREATMENTS))


@dataclass(frozen=True)
class Eta:
    """When the ambulance expects to arrive at ``hospital_id`` (None: at any of them).

    ``source``: "crew" (keyed) or "distance" (from the device's position).
    """

    arrival: datetime
    source: str = "crew"
    hospital_id: str | None = None


@dataclass(frozen=True)
class CrewMember:
    staff_id: str
    role: str  # e.g. 救急救命士 (emergency life-saving technician), 隊長
    name: str | None = None
    phone: str | None = None  # how the hospital reaches the crew


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    name: str
    fire_department: str | None = None
    phone: str | None = None  # the ambulance's phone


@dataclass(frozen=True)
class CaseTimes:
    """The EMS timeline (覚知, 現着, 接触, 車内収容, 現発, 病着); ``patient_contact``
    starts the encounter."""

    patient_contact: datetime
    call_received: datetime | None = None
    arrived_scene: datetime | None = None
    in_ambulance: datetime | None = None
    departed_scene: datetime | None = None
    arrived_hospital: datetime | None = None


@dataclass(frozen=True)
class CaseRecord:
    case_id: str
    device: DeviceInfo
    times: CaseTimes
    patient: VerifiedPatient = field(default_factory=VerifiedPatient)
    chief_complaint: str | None = None
    vitals: Sequence[VitalSigns] = ()
    crew: Sequence[CrewMember] = ()
    summary: Mapping[str, Any] | None = None  # the emergency summary Bundle, when fetched
    composed_at: datetime | None = None
    # How the summary was viewed: "consented" | "unconscious" (the platform's consent
    # values) and the platform's assurance level ("face_check", "card_signature", ...).
    consent: str | None = None
    assurance: str | None = None
    # What the device knew of the summary: one of SUMMARY_STATUSES ("no_card": none read).
    summary_status: str | None = None
    estimate: PatientEstimate | None = None  # 推定, when neither card nor summary says
    chief_complaint_note: str | None = None  # free text beside the list's choice
    # Heard on scene from the patient or family (HEARD_KINDS -> lines), not the summary.
    heard: Mapping[str, Sequence[str]] = field(default_factory=dict)
    treatments: Sequence[Treatment] = ()
    eta: Sequence[Eta] = ()


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.isoformat(timespec="seconds")


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


class _Builder:
    def __init__(self, record: CaseRecord) -> None:
        self.record = record
        self.entries: list[dict[str, Any]] = []
        self.patient_ref = _urn()
        self.encounter_ref = _urn()
        self.device_ref = _urn()

    def add(self, resource: dict[str, Any], full_url: str | None = None) -> str:
        url = full_url or _urn()
        self.entries.append({"fullUrl": url, "resource": resource})
        return url

    def patient(self) -> None:
        """The verified attributes; sex and birth date from the summary where the card gave
        none (``PATIENT_SOURCE_EXT`` says which); the crew's 推定 otherwise."""
        p = self.record.patient
        res: dict[str, Any] = {"resourceType": "Patient"}
        ext: list[dict[str, Any]] = []
        if p.name:
            res["name"] = [{"use": "official", "text": p.name}]
        if p.sex:
            res["gender"] = _GENDER[p.sex]
        if p.birth_date:
            res["birthDate"] = p.birth_date.isoformat()
        if p.address:
            res["address"] = [{"use": "home", "text": p.address}]
        if p.sex or p.birth_date:
            ext.append({"url": PATIENT_SOURCE_EXT, "valueCode": "card"})
        else:
            known = _summary_patient(self.record.summary)
            gender, born = known.get("gender"), known.get("birthDate")
            if isinstance(gender, str) and gender in GENDER_LABELS:
                res["gender"] = gender
            if isinstance(born, str) and _is_date(born):
                res["birthDate"] = born
            if "gender" in res or "birthDate" in res:
                ext.append({"url": PATIENT_SOURCE_EXT, "valueCode": "summary"})
        guess = self.record.estimate
        if guess is not None and "birthDate" not in res and guess.age_years is not None:
            age = {"value": guess.age_years, "unit": "歳", "system": UCUM, "code": "a"}
            ext.append({"url": ESTIMATED_AGE_EXT, "valueAge": age})
        if guess is not None and "gender" not in res and guess.sex in ("male", "female"):
            ext.append({"url": ESTIMATED_SEX_EXT, "valueCode": guess.sex})
        if ext:
            res["extension"] = ext
        self.add(res, self.patient_ref)

    def encounter(self, crew_refs: list[str]) -> None:
        t = self.record.times
        res: dict[str, Any] = {
            "resourceType": "Encounter",
            "identifier": [{"system": CASE_ID_SYSTEM, "value": self.record.case_id}],
            "status": "in-progress",
            "class": _coding(ACT_CODE, "EMER", "emergency"),
            "subject": {"reference": self.patient_ref},
            "period": {"start": _ts(t.patient_contact)},
        }
        ext: list[dict[str, Any]] = [
            {"url": time.url, "valueDateTime": _ts(moment)}
            for time in EMS_TIMES
            if (moment := getattr(t, time.attr)) is not None
        ]
        if self.record.consent:
            ext.append({"url": CONSENT_EXT, "valueCode": self.record.consent})
        if self.record.assurance:
            ext.append({"url": ASSURANCE_EXT, "valueCode": self.record.assurance})
        if self.record.summary_status in SUMMARY_STATUSES:
            ext.append({"url": SUMMARY_STATUS_EXT, "valueCode": self.record.summary_status})
        for eta in self.record.eta:
            parts: list[dict[str, Any]] = [
                {"url": "arrival", "valueDateTime": _ts(eta.arrival)},
                {"url": "source", "valueCode": eta.source},
            ]
            if eta.hospital_id is not None:
                parts.append({"url": "hospital", "valueString": eta.hospital_id})
            ext.append({"url": ETA_EXT, "extension": parts})
        res["extension"] = ext
        if crew_refs:
            res["participant"] = [{"individual": {"reference": r}} for r in crew_refs]
        self.add(res, self.encounter_ref)

    def device(self) -> None:
        d = self.record.device
        res: dict[str, Any] = {
            "resourceType": "Device",
            "identifier": [{"system": DEVICE_ID_SYSTEM, "value": d.device_id}],
            "deviceName": [{"name": d.name, "type": "user-friendly-name"}],
        }
        if d.fire_department:
            res["owner"] = {"display": d.fire_department}
        if d.phone:
            res["contact"] = [{"system": "phone", "value": d.phone}]
        self.add(res, self.device_ref)

    def crew(self) -> list[str]:
        refs = []
        for member in self.record.crew:
            res: dict[str, Any] = {
                "resourceType": "Practitioner",
                "identifier": [{"system": STAFF_ID_SYSTEM, "value": member.staff_id}],
                "qualification": [{"code": {"text": member.role}}],
            }
            if member.name:
                res["name"] = [{"text": member.name}]
            if member.phone:
                res["telecom"] = [{"system": "phone", "value": member.phone}]
            refs.append(self.add(res))
        return refs

    def observation(
        self,
        code: dict[str, Any],
        moment: datetime,
        *,
        vital: bool = True,
        value: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [code]},
            "subject": {"reference": self.patient_ref},
            "encounter": {"reference": self.encounter_ref},
            "effectiveDateTime": _ts(moment),
            "device": {"reference": self.device_ref},
        }
        if vital:
            cat = _coding(OBS_CATEGORY, "vital-signs", "Vital Signs")
            res["category"] = [{"coding": [cat]}]
        if value:
            res.update(value)
        if extra:
            res.update(extra)
        return self.add(res)

    def chief_complaint(self) -> list[str]:
        text = self.record.chief_complaint
        if not text:
            return []
        code = CHIEF_COMPLAINT.json()
        moment = self.record.times.patient_contact
        value: dict[str, Any] = {"valueString": text}
        if self.record.chief_complaint_note:
            value["note"] = [{"text": self.record.chief_complaint_note}]
        return [self.observation(code, moment, vital=False, value=value)]

    def heard(self) -> list[str]:
        """Allergies, history and medications heard on scene, tagged as heard (聴取)."""
        refs = []
        tag = {"tag": [_coding(SOURCE_SYSTEM, "heard", "heard on scene")]}
        subject = {"reference": self.patient_ref}
        for kind, lines in self.record.heard.items():
            if kind not in HEARD_KINDS:
                raise ValueError("heard is one of " + ", ".join(HEARD_KINDS))
            for line in lines:
                res: dict[str, Any]
                if kind == "allergies":
                    res = {"resourceType": "AllergyIntolerance", "patient": subject}
                    res["code"] = {"text": line}
                elif kind == "conditions":
                    res = {"resourceType": "Condition", "subject": subject}
                    res["code"] = {"text": line}
                else:
                    res = {"resourceType": "MedicationStatement", "status": "active"}
                    res |= {"subject": subject, "medicationCodeableConcept": {"text": line}}
                res["meta"] = tag
                refs.append(self.add(res))
        return refs

    def treatments(self) -> list[str]:
        """One Procedure per 処置, at its time."""
        refs = []
        for t in self.record.treatments:
            label = TREATMENTS[t.code]
            res: dict[str, Any] = {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {"coding": [_coding(TREATMENT_SYSTEM, t.code, label.en)], "text": label.ja},
                "subject": {"reference": self.patient_ref},
                "encounter": {"reference": self.encounter_ref},
                "performedDateTime": _ts(t.at),
            }
            if t.note:
                res["note"] = [{"text": t.note}]
            refs.append(self.add(res))
        return refs

    def vitals(self) -> list[str]:
        """One vital-signs panel per set, at the time the set was taken, with its values
        as members (one per row of ``VITAL_FIELDS``, systolic and diastolic together as
        one blood-pressure panel)."""
        refs: list[str] = []
        for v in self.record.vitals:
            at = v.observed_at
            members: list[str] = []
            bp = [
                {"code": {"coding": [f.coding.json()]}, "valueQuantity": f.quantity(val)}
                for f in VITAL_FIELDS
                if f.in_bp_panel and (val := getattr(v, f.attr)) is not None
            ]
            if bp:
                members.append(self.observation(BP_PANEL.json(), at, extra={"component": bp}))
            for f in VITAL_FIELDS:
                val = getattr(v, f.attr)
                if val is None or f.in_bp_panel:
                    continue
                if f.choices:
                    concept = {"coding": [_coding(f.choice_system, str(val))]}
                    value = {"valueCodeableConcept": concept}
                else:
                    value = {"valueQuantity": f.quantity(val)}
                members.append(self.observation(f.coding.json(), at, value=value))
            if not members:
                continue
            group = {"hasMember": [{"reference": r} for r in members]}
            refs += [self.observation(VITALS_PANEL.json(), at, extra=group), *members]
        return refs

    def summary(self) -> list[str]:
        """Copy the emergency summary's resources, references rewritten to this Bundle.

        The summary's own Patient and Composition are not copied (the verified
        Patient is ours); references to them point at our Patient, references
        between copied resources (e.g. to an Organization) follow them.
        """
        bundle = self.record.summary
        if not bundle:
            return []
        entries = [e for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
        renamed: dict[str, str] = {}
        keep: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            resource = entry["resource"]
            kind = resource.get("resourceType")
            if kind in (None, "Composition", "Bundle"):
                continue
            url = self.patient_ref if kind == "Patient" else _urn()
            for old in (entry.get("fullUrl"), f"{kind}/{resource.get('id')}"):
                if old:
                    renamed[old] = url
            if kind != "Patient":
                keep.append((url, resource))
        refs = []
        for url, resource in keep:
            copied = _rewrite(resource, renamed, self.patient_ref)
            copied.pop("id", None)
            refs.append(self.add(copied, url))
        return refs


def _summary_patient(bundle: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The emergency summary's own Patient (sex and birth date known to the source)."""
    for entry in (bundle or {}).get("entry", []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            return resource
    return {}


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _rewrite(value: Any, renamed: Mapping[str, str], patient_ref: str) -> Any:
    """Deep copy with every ``reference`` renamed; unknown Patient references -> ours."""
    if isinstance(value, list):
        return [_rewrite(v, renamed, patient_ref) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _rewrite(v, renamed, patient_ref) for k, v in value.items()}
    ref = out.get("reference")
    if isinstance(ref, str):
        if ref in renamed:
            out["reference"] = renamed[ref]
        elif ref.startswith("Patient/"):
            out["reference"] = patient_ref
    return out


def build_case_bundle(record: CaseRecord) -> dict[str, Any]:
    """The case as a FHIR R4B document Bundle (a JSON object)."""
    b = _Builder(record)
    composed = record.composed_at or datetime.now(UTC)
    b.patient()
    b.device()
    crew_refs = b.crew()
    b.encounter(crew_refs)
    complaint = b.chief_complaint()
    vitals = b.vitals()
    heard = b.heard()
    treatments = b.treatments()
    summary = b.summary()

    def section(title: str, code: Coding, refs: list[str]) -> dict[str, Any]:
        return {
            "title": title,
            "code": {"coding": [code.json()]},
            "entry": [{"reference": r} for r in refs],
        }

    sections = [
        section("主訴", CHIEF_COMPLAINT_SECTION, complaint),
        section("バイタルサイン", VITALS_SECTION, vitals),
        section("処置", TREATMENTS_SECTION, treatments),
        section("聴取した情報", HEARD_SECTION, heard),
    ]
    if summary:
        sections.append(section("救急時サマリー", SUMMARY_SECTION, summary))
    sections = [s for s in sections if s["entry"]]
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "identifier": {"system": CASE_ID_SYSTEM, "value": record.case_id},
        "status": "final",
        "type": {
            "coding": [
                _coding(LOINC, "67796-3", "EMS patient care report - version 3 Document NEMSIS")
            ]
        },
        "subject": {"reference": b.patient_ref},
        "encounter": {"reference": b.encounter_ref},
        "date": _ts(composed),
        "author": [{"reference": b.device_ref}, *({"reference": r} for r in crew_refs)],
        "title": "救急搬送症例",
    }
    if sections:
        composition["section"] = sections
    entries = [{"fullUrl": _urn(), "resource": composition}, *b.entries]
    return {
        "resourceType": "Bundle",
        "identifier": {"system": CASE_ID_SYSTEM, "value": record.case_id},
        "type": "document",
        "timestamp": _ts(composed),
        "entry": entries,
    }
