"""The case's one vocabulary: codes, Japanese and English labels, ranges.

Shared by the device (its screens and keypad), the hospital's card and its FHIR
export, and the bundle builder (``sync.fhir_case``, which exports these names too):
the vital values (``VITAL_FIELDS``: code, labels, unit, plausible range ⚠, alert
thresholds ◆, FHIR coding; a new value is one row), JCS, consent and
identity-assurance labels, the EMS times and the section codes.

Data and small value classes only, importing nothing heavier than the standard
library: the device's first screen needs its labels (docs/edge-ui.md, cold start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ASSURANCE_EXT",
    "ASSURANCE_LABELS",
    "AVAILABILITY_ITEM",
    "AVAILABILITY_ITEMS",
    "AVAILABILITY_STATUSES",
    "BP_PANEL",
    "CASE_ID_SYSTEM",
    "CHIEF_COMPLAINT",
    "CHIEF_COMPLAINT_SECTION",
    "COMPLAINT_NEEDS",
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
    "AvailabilityItem",
    "Coding",
    "EmsTime",
    "Label",
    "VitalField",
]


LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOCAL = "https://kyukyu.example.jp/fhir"
JCS_SYSTEM = f"{LOCAL}/CodeSystem/jcs"
LOCAL_OBS_SYSTEM = f"{LOCAL}/CodeSystem/observation"
TIME_EXT = f"{LOCAL}/StructureDefinition/ems-time"
CONSENT_EXT = f"{LOCAL}/StructureDefinition/consent"
ASSURANCE_EXT = f"{LOCAL}/StructureDefinition/identity-assurance"

Sex = Literal["1", "2", "9"]  # the card's 性別 code: 1 male, 2 female, 9 not applicable


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


@dataclass(frozen=True)
class Label:
    """A word of the vocabulary in both languages (Japanese first, English for trainers)."""

    ja: str
    en: str

    def pick(self, language: str) -> str:
        return self.en if language == "en" else self.ja


@dataclass(frozen=True)
class Coding:
    """A FHIR coding: what an Observation or a section is (``profile``: the base FHIR
    vital-signs profile its content follows, when it follows one)."""

    code: str
    display: str
    system: str = LOINC
    profile: str = ""

    def json(self) -> dict[str, Any]:
        return _coding(self.system, self.code, self.display)


# Each set is one Observation of this code grouping its values (hasMember); systolic
# and diastolic are the components of one blood-pressure panel.
VITALS_PANEL = Coding(
    "85353-1",
    "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel",
    profile="vitalspanel",
)
BP_PANEL = Coding("85354-9", "Blood pressure panel", profile="bp")

# Japan Coma Scale (JCS) as the crew keys it and every screen shows it: (label, code).
JCS_CHOICES: tuple[tuple[str, str], ...] = (
    ("0", "0"),
    ("I-1", "1"),
    ("I-2", "2"),
    ("I-3", "3"),
    ("II-10", "10"),
    ("II-20", "20"),
    ("II-30", "30"),
    ("III-100", "100"),
    ("III-200", "200"),
    ("III-300", "300"),
)
JCS_LEVELS = tuple(code for _, code in JCS_CHOICES)  # the codes a case may carry


@dataclass(frozen=True)
class VitalField:
    """One value of a vitals set: keyed on the device, coded in the case, shown at the
    hospital (docs/product.md).

    ``attr``: its name in ``VitalSigns``. ``plausible``: outside it the value is
    flagged ⚠ (usually a typing error), never refused. ``low``/``high``: the abnormal
    marks ◆ (below ``low``, at or above ``high``), which inform and never block.
    ``choices`` (label, code): keyed as a choice, not on the pad; a numeric code is
    compared with ``high`` (JCS ≥ II-10). ``short``: its name in a set's one-line record
    ("/…" joins the value before: BP 120/80). ``coding``/``ucum``/``unit_text``: its
    FHIR Observation (``in_bp_panel``: a component of the blood-pressure panel instead).
    ``keyed``: the device has a key for it (GCS is received and shown, not keyed yet).
    """

    key: str
    attr: str
    label: Label
    short: str
    coding: Coding
    unit: str = ""  # as the screens show it
    ucum: str = ""  # UCUM code
    unit_text: str = ""  # the Quantity's unit, when not the UCUM code
    plausible: tuple[float, float] | None = None
    low: float | None = None
    high: float | None = None
    decimals: int = 0
    choices: tuple[tuple[str, str], ...] = ()
    in_bp_panel: bool = False
    keyed: bool = True

    def quantity(self, value: float) -> dict[str, Any]:
        return _quantity(value, self.unit_text or self.ucum, self.ucum)

    def flagged(self, value: float) -> bool:
        """⚠: outside the plausible range."""
        return self.plausible is not None and not self.plausible[0] <= value <= self.plausible[1]

    def abnormal(self, value: float) -> bool:
        """◆: past the prehospital alert threshold."""
        return (self.low is not None and value < self.low) or (
            self.high is not None and value >= self.high
        )

    def choice_label(self, code: str) -> str | None:
        return next((label for label, c in self.choices if c == code), None)


# The one table of vital values, in screen order: a new value is a row here (and an
# attribute of ``VitalSigns`` and of the device's ``VitalsDraft``).
VITAL_FIELDS: tuple[VitalField, ...] = (
    VitalField(
        "systolic",
        "systolic_mmhg",
        Label("血圧(上)", "BP systolic"),
        "BP",
        Coding("8480-6", "Systolic blood pressure"),
        "mmHg",
        "mm[Hg]",
        "mmHg",
        plausible=(40, 280),
        low=90,
        high=180,
        in_bp_panel=True,
    ),
    VitalField(
        "diastolic",
        "diastolic_mmhg",
        Label("血圧(下)", "BP diastolic"),
        "/",
        Coding("8462-4", "Diastolic blood pressure"),
        "mmHg",
        "mm[Hg]",
        "mmHg",
        plausible=(20, 180),
        high=110,
        in_bp_panel=True,
    ),
    VitalField(
        "pulse",
        "heart_rate_per_min",
        Label("脈拍", "Pulse"),
        "P",
        Coding("8867-4", "Heart rate", profile="heartrate"),
        "/分",
        "/min",
        plausible=(20, 250),
        low=50,
        high=120,
    ),
    VitalField(
        "respiration",
        "respiratory_rate_per_min",
        Label("呼吸数", "Resp. rate"),
        "R",
        Coding("9279-1", "Respiratory rate", profile="resprate"),
        "/分",
        "/min",
        plausible=(4, 60),
        low=10,
        high=30,
    ),
    VitalField(
        "spo2",
        "spo2_percent",
        Label("SpO2", "SpO2"),
        "SpO2",
        Coding("59408-5", "Oxygen saturation by pulse oximetry", profile="oxygensat"),
        "%",
        "%",
        plausible=(50, 100),
        low=90,
    ),
    VitalField(
        "temperature",
        "body_temperature_c",
        Label("体温", "Temp."),
        "BT",
        Coding("8310-5", "Body temperature", profile="bodytemp"),
        "℃",
        "Cel",
        plausible=(30.0, 43.0),
        low=35.0,
        high=38.5,
        decimals=1,
    ),
    VitalField(
        "gcs",
        "gcs_total",
        Label("GCS", "GCS"),
        "GCS",
        Coding("9269-2", "Glasgow coma score total"),
        ucum="{score}",
        plausible=(3, 15),
        keyed=False,
    ),
    VitalField(
        "jcs",
        "jcs",
        Label("意識 JCS", "JCS"),
        "JCS",
        Coding("jcs", "Japan Coma Scale", LOCAL_OBS_SYSTEM),
        high=10,
        choices=JCS_CHOICES,
    ),
)
VITAL_FIELD: Mapping[str, VitalField] = {f.key: f for f in VITAL_FIELDS}
SHOCK_INDEX = Label("ショック指数", "Shock index")  # pulse / systolic ≥ 1.0: abnormal

# How the summary was viewed (the platform's consent values) and how the patient was
# identified (its assurance levels), as the device and the hospital's card say it.
CONSENT_LABELS: Mapping[str, Label] = {
    "consented": Label("口頭同意あり", "Oral consent given"),
    "unconscious": Label(
        "意識障害等により同意取得困難（生命・身体保護のため閲覧）",
        "Cannot consent (unconscious): viewing to protect life",
    ),
    "refused": Label("同意なし（閲覧しない）", "Refused: nothing is viewed"),
}
ASSURANCE_LABELS: Mapping[str, Label] = {
    "face_check": Label("顔写真で確認", "face check"),
    "card_signature": Label("暗証番号＋カード署名", "PIN + card signature"),
    "collation_b_device_attested": Label("照合番号B＋券面事項", "collation number B + attributes"),
}

# FHIR's administrative genders as the screens name them.
GENDER_LABELS: Mapping[str, Label] = {
    "male": Label("男性", "male"),
    "female": Label("女性", "female"),
    "unknown": Label("不明", "unknown"),
    "other": Label("その他", "other"),
}

# The emergency summary's sections (the platform's summary Bundle, copied into the case):
# each one's code in the summary's section code system, and its title on every screen.
SUMMARY_SECTIONS: Mapping[str, Label] = {
    "allergies": Label("アレルギー・副作用", "Allergies / adverse reactions"),
    "conditions": Label("傷病名", "Conditions"),
    "visits": Label("受診歴", "Visits"),
    "eprescriptions": Label("電子処方箋", "e-Prescriptions"),
    "medications": Label("薬剤情報", "Medications"),
    "surgeries": Label("手術", "Surgeries"),
    "treatments": Label("診療行為（処置）", "Treatments"),
    "dialysis": Label("人工透析", "Dialysis"),
    "checks": Label("特定健診", "Latest health check"),
}


@dataclass(frozen=True)
class EmsTime:
    """One time of the EMS timeline: its ``CaseTimes`` attribute and Encounter extension."""

    attr: str
    name: str  # the extension is f"{TIME_EXT}-{name}"
    label: Label

    @property
    def url(self) -> str:
        return f"{TIME_EXT}-{self.name}"


EMS_TIMES: tuple[EmsTime, ...] = (
    EmsTime("call_received", "call-received", Label("覚知", "call received")),
    EmsTime("arrived_scene", "arrived-scene", Label("現着", "arrived on scene")),
    EmsTime("patient_contact", "patient-contact", Label("接触", "patient contact")),
    EmsTime("departed_scene", "departed-scene", Label("現発", "left the scene")),
)
EMS_TIME: Mapping[str, EmsTime] = {t.attr: t for t in EMS_TIMES}

# The Composition's sections (title, LOINC): what the hospital reads each part from.
CHIEF_COMPLAINT_SECTION = Coding("10154-3", "Chief complaint Narrative - Reported")
VITALS_SECTION = Coding("8716-3", "Vital signs")
SUMMARY_SECTION = Coding("60591-5", "Patient summary Document")
CHIEF_COMPLAINT = Coding("8661-1", "Chief complaint - Reported")  # its Observation
CASE_ID_SYSTEM = f"{LOCAL}/case-id"
DEVICE_ID_SYSTEM = f"{LOCAL}/device-id"
STAFF_ID_SYSTEM = f"{LOCAL}/staff-id"


# -- 応需状況 (hospital availability: docs/availability.md) ------------------------------
# Operational words, never patient data. The status a hospital sets, and 不明 for one that
# was never set or is past its expiry (shown instead of 可, never as 可).
AVAILABILITY_STATUSES: Mapping[str, Label] = {
    "available": Label("可", "available"),
    "consult": Label("要相談", "call first"),
    "unavailable": Label("不可", "unavailable"),
    "unknown": Label("不明", "unknown"),
}


@dataclass(frozen=True)
class AvailabilityItem:
    """A department (診療科) or capability (設備・処置) a hospital publishes a status for;
    ``counted``: it carries a number too (ICU 空床数)."""

    code: str
    label: Label
    kind: Literal["department", "capability"]
    counted: bool = False


AVAILABILITY_ITEMS: tuple[AvailabilityItem, ...] = (
    AvailabilityItem("internal_medicine", Label("内科", "Internal medicine"), "department"),
    AvailabilityItem("surgery", Label("外科", "Surgery"), "department"),
    AvailabilityItem("orthopedics", Label("整形外科", "Orthopaedics"), "department"),
    AvailabilityItem("neurosurgery", Label("脳神経外科", "Neurosurgery"), "department"),
    AvailabilityItem("cardiology", Label("循環器内科", "Cardiology"), "department"),
    AvailabilityItem(
        "cardiovascular_surgery", Label("心臓血管外科", "Cardiovascular surgery"), "department"
    ),
    AvailabilityItem("pediatrics", Label("小児科", "Paediatrics"), "department"),
    AvailabilityItem("obstetrics", Label("産婦人科", "Obstetrics"), "department"),
    AvailabilityItem("psychiatry", Label("精神科", "Psychiatry"), "department"),
    AvailabilityItem("burns", Label("熱傷", "Burns"), "department"),
    AvailabilityItem("poisoning", Label("中毒", "Poisoning"), "department"),
    AvailabilityItem("ct", Label("CT", "CT"), "capability"),
    AvailabilityItem("mri", Label("MRI", "MRI"), "capability"),
    AvailabilityItem("angiography", Label("血管造影", "Angiography"), "capability"),
    AvailabilityItem("emergency_surgery", Label("緊急手術", "Emergency surgery"), "capability"),
    AvailabilityItem("dialysis", Label("透析", "Dialysis"), "capability"),
    AvailabilityItem("icu", Label("ICU 空床数", "ICU beds free"), "capability", counted=True),
    AvailabilityItem("delivery", Label("分娩", "Delivery"), "capability"),
)
AVAILABILITY_ITEM: Mapping[str, AvailabilityItem] = {i.code: i for i in AVAILABILITY_ITEMS}

# What a patient with this 主訴 needs of a hospital: the one map from the crew's chief
# complaint (the device's list, Japanese) to the departments and capabilities whose
# 応需状況 the hospitals screen shows and orders by. A complaint not here (その他, free
# text) orders by distance alone. 妊婦 is not on the device's list: typed as free text.
COMPLAINT_NEEDS: Mapping[str, tuple[str, ...]] = {
    "意識障害": ("neurosurgery", "internal_medicine", "ct"),
    "胸痛": ("cardiology", "angiography"),
    "呼吸困難": ("internal_medicine", "icu"),
    "腹痛": ("surgery", "ct"),
    "頭痛": ("neurosurgery", "ct"),
    "痙攣": ("neurosurgery", "ct"),
    "麻痺・しびれ": ("neurosurgery", "ct", "mri"),
    "めまい": ("neurosurgery", "internal_medicine", "mri"),
    "発熱": ("internal_medicine",),
    "嘔吐・吐血": ("internal_medicine", "surgery"),
    "外傷": ("surgery", "orthopedics", "ct", "emergency_surgery"),
    "熱傷": ("burns",),
    "中毒": ("poisoning", "dialysis"),
    "心肺停止": ("cardiology", "icu"),
    "妊婦": ("obstetrics", "delivery"),
}
