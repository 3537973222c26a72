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
    GENDER_LABELS,
    JCS_CHOICES,
    JCS_LEVELS,
    JCS_SYSTEM,
    LOCAL_OBS_SYSTEM,
    LOINC,
    OBS_CATEGORY,
    SHOCK_INDEX,
    STAFF_ID_SYSTEM,
    SUMMARY_SECTION,
    SUMMARY_SECTIONS,
    TIME_EXT,
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
    "Label",
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
class VitalSigns:
    """One set of vitals measured at ``observed_at``; absent values are omitted."""

    observed_at: datetime
    systolic_mmhg: float | None = None
    diastolic_mmhg: float | None = None
    heart_rate_per_min: float | None = None
    respiratory_rate_per_min: float | None = None
    spo2_percent: float | None = None
    body_temperature_c: float | None = None
    gcs_total: int | None = None
    jcs: str | None = None  # one of JCS_LEVELS

    def __post_init__(self) -> None:
        if self.jcs is not None and self.jcs not in JCS_LEVELS:
            raise ValueError("JCS must be one of " + ", ".join(JCS_LEVELS))
        if self.gcs_total is not None and not 3 <= self.gcs_total <= 15:
            raise ValueError("GCS total is 3..15")


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
    """The EMS timeline (覚知, 現着, 接触, 現発); ``patient_contact`` starts the encounter."""

    patient_contact: datetime
    call_received: datetime | None = None
    arrived_scene: datetime | None = None
    departed_scene: datetime | None = None


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
        p = self.record.patient
        res: dict[str, Any] = {"resourceType": "Patient"}
        if p.name:
            res["name"] = [{"use": "official", "text": p.name}]
        if p.sex:
            res["gender"] = _GENDER[p.sex]
        if p.birth_date:
            res["birthDate"] = p.birth_date.isoformat()
        if p.address:
            res["address"] = [{"use": "home", "text": p.address}]
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
        ext = [
            {"url": time.url, "valueDateTime": _ts(moment)}
            for time in EMS_TIMES
            if (moment := getattr(t, time.attr)) is not None
        ]
        if self.record.consent:
            ext.append({"url": CONSENT_EXT, "valueCode": self.record.consent})
        if self.record.assurance:
            ext.append({"url": ASSURANCE_EXT, "valueCode": self.record.assurance})
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
        return [self.observation(code, moment, vital=False, value={"valueString": text})]

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
                    concept = {"coding": [_coding(JCS_SYSTEM, str(val))]}
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
    ]
    if summary:
        sections.append(section("救急時サマリー", SUMMARY_SECTION, summary))
    sections = [s for s in sections if s["entry"]]
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "identifier": {"system": CASE_ID_SYSTEM, "value": record.case_id},
        "status": "final",
        "type": {"coding": [_coding(LOINC, "67796-3", "EMS patient care report")]},
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
