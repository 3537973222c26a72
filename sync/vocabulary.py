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
    "CPSS_CHOICES",
    "CPSS_SYSTEM",
    "DEVICE_ID_SYSTEM",
    "ECG_RHYTHMS",
    "ECG_SYSTEM",
    "EMS_TIME",
    "EMS_TIMES",
    "ESTIMATED_AGE_EXT",
    "ESTIMATED_SEX_EXT",
    "ETA_EXT",
    "GENDER_LABELS",
    "HEARD_KINDS",
    "HEARD_SECTION",
    "JCS_CHOICES",
    "JCS_LEVELS",
    "JCS_SUFFIXES",
    "JCS_SYSTEM",
    "LOCAL_OBS_SYSTEM",
    "LOINC",
    "O2_PRESETS",
    "PATIENT_SOURCE_EXT",
    "PUPIL_REFLEXES",
    "PUPIL_REFLEX_SYSTEM",
    "PUPIL_SIZES",
    "SECTION_SYSTEM",
    "SHOCK_INDEX",
    "SOURCE_LABELS",
    "SOURCE_SYSTEM",
    "STAFF_ID_SYSTEM",
    "SUMMARY_SECTION",
    "SUMMARY_SECTIONS",
    "SUMMARY_STATUSES",
    "SUMMARY_STATUS_EXT",
    "TIME_EXT",
    "TREATMENTS",
    "TREATMENTS_SECTION",
    "TREATMENT_SYSTEM",
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
    "jcs_code",
    "jcs_label",
    "jcs_parts",
]


LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOCAL = "https://kyukyu.example.jp/fhir"
JCS_SYSTEM = f"{LOCAL}/CodeSystem/jcs"
PUPIL_REFLEX_SYSTEM = f"{LOCAL}/CodeSystem/pupil-reflex"
ECG_SYSTEM = f"{LOCAL}/CodeSystem/ecg-rhythm"
CPSS_SYSTEM = f"{LOCAL}/CodeSystem/cpss"
TREATMENT_SYSTEM = f"{LOCAL}/CodeSystem/treatment"
SECTION_SYSTEM = f"{LOCAL}/CodeSystem/section"
SOURCE_SYSTEM = f"{LOCAL}/CodeSystem/information-source"
LOCAL_OBS_SYSTEM = f"{LOCAL}/CodeSystem/observation"
TIME_EXT = f"{LOCAL}/StructureDefinition/ems-time"
CONSENT_EXT = f"{LOCAL}/StructureDefinition/consent"
ASSURANCE_EXT = f"{LOCAL}/StructureDefinition/identity-assurance"
SUMMARY_STATUS_EXT = f"{LOCAL}/StructureDefinition/summary-status"
ETA_EXT = f"{LOCAL}/StructureDefinition/eta"
ESTIMATED_AGE_EXT = f"{LOCAL}/StructureDefinition/estimated-age"
ESTIMATED_SEX_EXT = f"{LOCAL}/StructureDefinition/estimated-sex"
PATIENT_SOURCE_EXT = f"{LOCAL}/StructureDefinition/patient-source"

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
BP_PANEL = Coding("85354-9", "Blood pressure panel with all children optional", profile="bp")

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
JCS_LEVELS = tuple(code for _, code in JCS_CHOICES)  # the levels, without a suffix
# JCS suffixes, written after the level in this order (II-30-RI): R restless, I
# incontinence, A akinetic mutism / apallic state.
JCS_SUFFIXES: tuple[tuple[str, Label], ...] = (
    ("R", Label("R 不穏", "R restless")),
    ("I", Label("I 失禁", "I incontinence")),
    ("A", Label("A 自発性喪失", "A akinetic mutism")),
)


def jcs_code(level: str, suffixes: str = "") -> str:
    """The case's JCS code: the level's digits and the suffixes in R, I, A order (30RI)."""
    if level not in JCS_LEVELS:
        raise ValueError("JCS must be one of " + ", ".join(JCS_LEVELS))
    if any(x not in "RIA" for x in suffixes):
        raise ValueError("JCS suffixes are R, I and A")
    return level + "".join(x for x in "RIA" if x in suffixes)


def jcs_parts(code: str) -> tuple[str, str] | None:
    """(level, suffixes) of a JCS code, or None when it is not one."""
    level = code.rstrip("RIA")
    suffixes = code[len(level) :]
    if level not in JCS_LEVELS or jcs_code(level, suffixes) != code:
        return None
    return level, suffixes


def jcs_label(code: str) -> str | None:
    """II-30-RI for "30RI"; None when ``code`` is not a JCS code."""
    parts = jcs_parts(code)
    if parts is None:
        return None
    label = next(lb for lb, c in JCS_CHOICES if c == parts[0])
    return f"{label}-{parts[1]}" if parts[1] else label


@dataclass(frozen=True)
class VitalField:
    """One value of a vitals set: keyed on the device, coded in the case, shown at the
    hospital (docs/product.md).

    ``attr``: its name in ``VitalSigns``. ``plausible``: outside it the value is
    flagged ⚠ (usually a typing error), never refused. ``low``/``high``: the abnormal
    marks ◆ (below ``low``, at or above ``high``), which inform and never block.
    ``choices`` (label, code): keyed as a choice, not on the pad, coded in
    ``choice_system``; a choice is abnormal when its code is in ``abnormal_codes`` or its
    leading number is past ``high`` (JCS ≥ II-10, CPSS ≥ 1). ``presets`` (label, value):
    a number keyed by one tap on a preset (O2 flow: 室内気 is 0). ``short``: its name in
    a set's one-line record ("/…" joins the value before: BP 120/80).
    ``coding``/``ucum``/``unit_text``: its FHIR Observation (``in_bp_panel``: a component
    of the blood-pressure panel instead). ``group``: the device's tile that keys it (GCS
    E, V and M on one picker, both pupils on another). ``keyed``: the device has a key for
    it (the GCS total is computed from E, V and M).
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
    choice_system: str = ""
    abnormal_codes: frozenset[str] = frozenset()
    presets: tuple[tuple[str, float], ...] = ()
    in_bp_panel: bool = False
    keyed: bool = True
    group: str = ""

    @property
    def tile(self) -> str:
        """The device's tile (picker or pad) that keys this value."""
        return self.group or self.key

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

    def choice_abnormal(self, code: str) -> bool:
        """◆ for a choice: a listed code, or a leading number past ``high`` (JCS 30RI)."""
        if code in self.abnormal_codes:
            return True
        digits = code[: len(code) - len(code.lstrip("0123456789"))]
        # ASCII digits only ("¹" is a digit to str.isdigit, not to int), and few of them.
        if not digits or not digits.isascii() or self.high is None:
            return False
        return len(digits) > 6 or self.abnormal(int(digits))

    def choice_label(self, code: str) -> str | None:
        if self.choice_system == JCS_SYSTEM:
            return jcs_label(code)
        return next((label for label, c in self.choices if c == code), None)

    def valid_choice(self, code: str) -> bool:
        return self.choice_label(code) is not None

    def text(self, value: float | str | None) -> str:
        """The value as every screen writes it (— when absent; 室内気 for an O2 flow of 0)."""
        if value is None:
            return "—"
        if isinstance(value, str):
            return self.choice_label(value) or value[:20]
        preset = next((lb for lb, v in self.presets if v == value), None)
        if preset is not None and value == 0:
            return preset
        if self.decimals:
            return f"{value:.{self.decimals}f}"
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


# O2 flow as the crew keys it: one tap on room air or a flow (L/min).
O2_PRESETS: tuple[tuple[str, float], ...] = (
    ("室内気", 0.0),
    *((f"{n}L", float(n)) for n in (1, 2, 3, 4, 5, 6, 8, 10, 15)),
)
PUPIL_SIZES: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
PUPIL_REFLEXES: tuple[tuple[str, str], ...] = (
    ("迅速", "brisk"),
    ("緩慢", "sluggish"),
    ("消失", "absent"),
)
# 心電図: the short list (docs/product.md); the lethal rhythms and SVT are marked ◆.
ECG_RHYTHMS: tuple[tuple[str, str], ...] = (
    ("洞調律", "sinus"),
    ("心房細動", "af"),
    ("上室性頻拍", "svt"),
    ("心室頻拍", "vt"),
    ("心室細動", "vf"),
    ("PEA", "pea"),
    ("心静止", "asystole"),
    ("その他の調律", "other"),
)
# Cincinnati Prehospital Stroke Scale: how many of its three signs (facial droop, arm
# drift, speech) are present; one is enough to suspect a stroke (◆).
CPSS_CHOICES: tuple[tuple[str, str], ...] = (
    ("CPSS 0/3", "0"),
    ("CPSS 1/3", "1"),
    ("CPSS 2/3", "2"),
    ("CPSS 3/3", "3"),
)
_SCORE = "{score}"


def _gcs(key: str, attr: str, part: str, code: str, display: str, top: int) -> VitalField:
    return VitalField(
        key,
        attr,
        Label(f"GCS {part}", f"GCS {part}"),
        part,
        Coding(code, display),
        ucum=_SCORE,
        plausible=(1, top),
        group="gcs",
    )


def _local(code: str, display: str) -> Coding:
    return Coding(code, display, LOCAL_OBS_SYSTEM)


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
        Coding("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        "%",
        "%",
        plausible=(50, 100),
        low=90,
    ),
    VitalField(
        "o2",
        "o2_flow_l_min",
        Label("酸素", "O2"),
        "O2",
        Coding("3151-8", "Inhaled oxygen flow rate"),
        "L/分",
        "L/min",
        plausible=(0, 25),
        decimals=0,
        presets=O2_PRESETS,
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
        "jcs",
        "jcs",
        Label("意識 JCS", "JCS"),
        "JCS",
        _local("jcs", "Japan Coma Scale"),
        high=10,
        choices=JCS_CHOICES,
        choice_system=JCS_SYSTEM,
    ),
    _gcs("gcs_e", "gcs_eye", "E", "9267-6", "Glasgow coma score eye opening", 4),
    _gcs("gcs_v", "gcs_verbal", "V", "9270-0", "Glasgow coma score verbal", 5),
    _gcs("gcs_m", "gcs_motor", "M", "9268-4", "Glasgow coma score motor", 6),
    VitalField(
        "gcs",
        "gcs_total",
        Label("GCS", "GCS"),
        "GCS",
        Coding("9269-2", "Glasgow coma score total"),
        ucum=_SCORE,
        plausible=(3, 15),
        low=9,  # GCS ≤ 8
        keyed=False,
    ),
    VitalField(
        "pupil_l",
        "pupil_left_mm",
        Label("瞳孔 左", "Pupil L"),
        "瞳孔L",
        _local("pupil-left-size", "Left pupil diameter"),
        "mm",
        "mm",
        plausible=(1.0, 9.0),
        decimals=1,
        group="pupils",
    ),
    VitalField(
        "pupil_r",
        "pupil_right_mm",
        Label("瞳孔 右", "Pupil R"),
        "R",
        _local("pupil-right-size", "Right pupil diameter"),
        "mm",
        "mm",
        plausible=(1.0, 9.0),
        decimals=1,
        group="pupils",
    ),
    VitalField(
        "reflex_l",
        "pupil_left_reflex",
        Label("対光反射 左", "Light reflex L"),
        "反射L",
        _local("pupil-left-reflex", "Left pupil light reflex"),
        choices=PUPIL_REFLEXES,
        choice_system=PUPIL_REFLEX_SYSTEM,
        abnormal_codes=frozenset({"absent"}),
        group="pupils",
    ),
    VitalField(
        "reflex_r",
        "pupil_right_reflex",
        Label("対光反射 右", "Light reflex R"),
        "R",
        _local("pupil-right-reflex", "Right pupil light reflex"),
        choices=PUPIL_REFLEXES,
        choice_system=PUPIL_REFLEX_SYSTEM,
        abnormal_codes=frozenset({"absent"}),
        group="pupils",
    ),
    VitalField(
        "ecg",
        "ecg_rhythm",
        Label("心電図", "ECG"),
        "ECG",
        _local("ecg-rhythm", "ECG rhythm (prehospital monitor)"),
        choices=ECG_RHYTHMS,
        choice_system=ECG_SYSTEM,
        abnormal_codes=frozenset({"svt", "vt", "vf", "pea", "asystole"}),
    ),
    VitalField(
        "glucose",
        "glucose_mg_dl",
        Label("血糖", "Glucose"),
        "BS",
        Coding("2339-0", "Glucose [Mass/volume] in Blood"),
        "mg/dL",
        "mg/dL",
        plausible=(10, 1000),
        low=70,
        high=300,
    ),
    VitalField(
        "cpss",
        "stroke_cpss",
        Label("脳卒中 CPSS", "Stroke CPSS"),
        "CPSS",
        _local("cpss", "Cincinnati Prehospital Stroke Scale (signs present of 3)"),
        high=1,
        choices=CPSS_CHOICES,
        choice_system=CPSS_SYSTEM,
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
    EmsTime("in_ambulance", "in-ambulance", Label("車内収容", "in the ambulance")),
    EmsTime("departed_scene", "departed-scene", Label("現発", "left the scene")),
    EmsTime("arrived_hospital", "arrived-hospital", Label("病着", "at the hospital")),
)
EMS_TIME: Mapping[str, EmsTime] = {t.attr: t for t in EMS_TIMES}

# 処置: what the crew did, each with its time (Procedure, our own code system).
TREATMENTS: Mapping[str, Label] = {
    "oxygen": Label("酸素投与", "oxygen"),
    "airway": Label("気道確保", "airway"),
    "ventilation": Label("補助換気", "assisted ventilation"),
    "cpr": Label("胸骨圧迫", "chest compressions"),
    "defibrillation": Label("除細動", "defibrillation"),
    "iv": Label("静脈路確保", "IV access"),
    "hemostasis": Label("止血", "haemorrhage control"),
    "immobilization": Label("固定", "immobilisation"),
    "warming": Label("保温", "warming"),
    "glucose_check": Label("血糖測定", "glucose check"),
    "other": Label("その他の処置", "other"),
}

# Where the allergies, conditions and medications on the hospital's card come from: five
# different words (a doctor must tell "none recorded" from "could not be looked up").
SOURCE_LABELS: Mapping[str, Label] = {
    "summary": Label("サマリー", "summary"),
    "heard": Label("聴取", "heard on scene"),
    "none_recorded": Label("記録なし", "none recorded"),
    "summary_unavailable": Label("サマリー取得不可", "summary unavailable"),
    "no_card": Label("カードなし", "no card"),
}
# What the device knew of the summary when it sent the case (Encounter extension).
SUMMARY_STATUSES = ("found", "not_found", "refused", "unavailable", "no_card")
# The heard lists (聴取: from the patient or family on scene, not from the summary).
HEARD_KINDS: Mapping[str, Label] = {
    "allergies": Label("アレルギー", "allergies"),
    "conditions": Label("既往歴", "history"),
    "medications": Label("内服", "medications"),
}

# The Composition's sections (title, LOINC): what the hospital reads each part from.
CHIEF_COMPLAINT_SECTION = Coding("10154-3", "Chief complaint Narrative - Reported")
VITALS_SECTION = Coding("8716-3", "Vital signs")
SUMMARY_SECTION = Coding("60591-5", "Patient summary Document")
CHIEF_COMPLAINT = Coding("8661-1", "Chief complaint - Reported")  # its Observation
HEARD_SECTION = Coding("heard", "History heard on scene", SECTION_SYSTEM)
TREATMENTS_SECTION = Coding("treatments", "Prehospital treatments", SECTION_SYSTEM)
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
