"""What the case flow shows: stages, choices and one immutable view of the case.

The UI renders a ``CaseView`` and nothing else; every word it needs comes as a
``Text`` (Japanese first, English for trainers). Values stay in memory only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sync.reasons import CLOSURE_REASONS as _CLOSURE_REASONS
from sync.reasons import DECLINE_REASONS

__all__ = [
    "CHIEF_COMPLAINTS",
    "CLOSURE_REASONS",
    "DELIVERY_TEXT",
    "JCS_CHOICES",
    "JST",
    "PLAUSIBLE",
    "REFUSAL_REASONS",
    "SHOCK_INDEX",
    "VITAL_FIELD",
    "VITAL_FIELDS",
    "CaseView",
    "Consent",
    "EraOffer",
    "Evidence",
    "HospitalRow",
    "IdentityMethod",
    "Notice",
    "Stage",
    "SummarySection",
    "Text",
    "VitalField",
    "VitalsDraft",
    "abnormal",
    "out_of_range",
]


@dataclass(frozen=True)
class Text:
    """A message in both languages (Japanese first)."""

    ja: str
    en: str

    def pick(self, language: str) -> str:
        return self.en if language == "en" else self.ja


class Stage(enum.StrEnum):
    """Where the case stands (one screen each)."""

    STANDBY = "standby"  # カードをタッチしてください (also "take a card later" in a case)
    READING = "reading"  # card detected, reading and checking (progress by step)
    CARD_PROBLEM = "card_problem"  # removed mid-read, not a My Number card: re-tap or go on
    CONSENT = "consent"
    IDENTITY = "identity"
    PIN = "pin"  # 暗証番号 (phones, signature proof)
    COLLATION_B = "collation_b"  # 照合番号B keyed from the card face
    LOOKING_UP = "looking_up"  # asking the platform for the summary
    SUMMARY = "summary"
    VITALS = "vitals"  # 主訴 and バイタル
    HOSPITALS = "hospitals"  # selection, send to all, live answers
    CONFIRMED = "confirmed"  # 搬送先決定; "done" forgets the patient and returns to standby


class Consent(enum.StrEnum):
    CONSENTED = "consented"  # 口頭同意あり
    UNCONSCIOUS = "unconscious"  # 意識障害等により同意取得困難（生命・身体保護のため閲覧）
    REFUSED = "refused"  # 同意なし（閲覧しない）


CONSENT_TEXT = {
    Consent.CONSENTED: Text("口頭同意あり", "Oral consent given"),
    Consent.UNCONSCIOUS: Text(
        "意識障害等により同意取得困難（生命・身体保護のため閲覧）",
        "Cannot consent (unconscious): viewing to protect life",
    ),
    Consent.REFUSED: Text("同意なし（閲覧しない）", "Refused: nothing is viewed"),
}


class IdentityMethod(enum.StrEnum):
    FACE = "face_check"
    PIN = "pin"
    COLLATION_B = "collation_b"


class Evidence(enum.StrEnum):
    """The platform's evidence kinds (its assurance levels follow from them)."""

    FACE_CHECK = "face_check"
    PIN_SIGNATURE = "pin_signature"
    COLLATION_B = "collation_b"


ASSURANCE_TEXT = {
    "face_check": Text("顔写真で確認", "face check"),
    "card_signature": Text("暗証番号＋カード署名", "PIN + card signature"),
    "collation_b_device_attested": Text("照合番号B＋券面事項", "collation number B + attributes"),
}

# Who verified the card's certificate (edge.jpki's CertificateStatus values).
CERTIFICATE_TEXT = {
    "trusted": Text("端末で検証済み", "verified on the device"),
    "verified_by_platform": Text("プラットフォームで検証済み", "verified by the platform"),
    "not_verified_on_device": Text("端末では未検証", "not verified on the device"),
    "untrusted": Text("証明書に問題あり", "certificate not valid"),
    "not_checked": Text("未検証", "not checked"),
}

# 主訴: the short list a Japanese crew knows; その他 is the exception.
CHIEF_COMPLAINTS: tuple[Text, ...] = (
    Text("意識障害", "altered consciousness"),
    Text("胸痛", "chest pain"),
    Text("呼吸困難", "dyspnoea"),
    Text("腹痛", "abdominal pain"),
    Text("頭痛", "headache"),
    Text("痙攣", "seizure"),
    Text("麻痺・しびれ", "paralysis / numbness"),
    Text("めまい", "dizziness"),
    Text("発熱", "fever"),
    Text("嘔吐・吐血", "vomiting / haematemesis"),
    Text("外傷", "trauma"),
    Text("熱傷", "burn"),
    Text("中毒", "poisoning"),
    Text("心肺停止", "cardiac arrest"),
    Text("その他", "other"),
)

# JCS (Japan Coma Scale) as shown and as coded in the case (sync.fhir_case.JCS_LEVELS).
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

# 受入不可 reasons: the hospitals' fixed list (sync.reasons), as the screens name it.
REFUSAL_REASONS = DECLINE_REASONS

JST = timezone(timedelta(hours=9), "JST")  # the times the crew sees and keys


@dataclass(frozen=True)
class VitalField:
    """One value of a vitals set: how it is keyed, shown and checked (product.md).

    ``plausible``: outside it the value is flagged ⚠ (usually a typing error), never
    refused. ``low``/``high``: the abnormal marks (below ``low``, at or above ``high``),
    which inform and never block. ``choices`` (label, code): keyed as a choice, not on the
    pad; a numeric code is compared with ``high`` (JCS ≥ II-10).
    """

    key: str
    sent_as: str  # its name in sync.fhir_case.VitalSigns (what the hospital receives)
    label: Text
    short: str  # in a set's one-line record; "/…" joins the value before (BP 120/80)
    unit: str = ""
    plausible: tuple[float, float] | None = None
    low: float | None = None
    high: float | None = None
    decimal: bool = False
    choices: tuple[tuple[str, str], ...] = ()


# One row per value of a set: a new value is a row here and an attribute of VitalsDraft.
VITAL_FIELDS: tuple[VitalField, ...] = (
    VitalField(
        "systolic",
        "systolic_mmhg",
        Text("血圧(上)", "BP systolic"),
        "BP",
        "mmHg",
        plausible=(40, 280),
        low=90,
        high=180,
    ),
    VitalField(
        "diastolic",
        "diastolic_mmhg",
        Text("血圧(下)", "BP diastolic"),
        "/",
        "mmHg",
        plausible=(20, 180),
        high=110,
    ),
    VitalField(
        "pulse",
        "heart_rate_per_min",
        Text("脈拍", "Pulse"),
        "P",
        "/分",
        plausible=(20, 250),
        low=50,
        high=120,
    ),
    VitalField(
        "respiration",
        "respiratory_rate_per_min",
        Text("呼吸数", "Resp. rate"),
        "R",
        "/分",
        plausible=(4, 60),
        low=10,
        high=30,
    ),
    VitalField(
        "spo2", "spo2_percent", Text("SpO2", "SpO2"), "SpO2", "%", plausible=(50, 100), low=90
    ),
    VitalField(
        "temperature",
        "body_temperature_c",
        Text("体温", "Temp."),
        "BT",
        "℃",
        plausible=(30.0, 43.0),
        low=35.0,
        high=38.5,
        decimal=True,
    ),
    VitalField("jcs", "jcs", Text("意識 JCS", "JCS"), "JCS", high=10, choices=JCS_CHOICES),
)
VITAL_FIELD = {f.key: f for f in VITAL_FIELDS}
SHOCK_INDEX = Text("ショック指数", "Shock index")  # pulse / systolic ≥ 1.0: abnormal

# 不搬送・中止 reasons (docs/product.md), in screen order.
CLOSURE_REASONS: tuple[Text, ...] = tuple(Text(ja, en) for ja, en in _CLOSURE_REASONS)

# One vocabulary for where a case stands at one hospital, on the device and the dashboard:
# 未送信（封緘して保存）→ 送信済み（プラットフォーム受領）→ 病院に到着 → 受入可 / 受入不可（理由）
# → 搬送先決定. A hospital row has room for the words without their explanation (the
# notice line says it whole: T.SENDING, T.QUEUED_OFFLINE, T.SENT).
DELIVERY_TEXT: dict[str, Text] = {
    "queued": Text("未送信（封緘）", "Not sent (sealed)"),
    "sent": Text("送信済み", "Sent"),
    "received": Text("病院に到着", "At the hospital"),
    "accept": Text("受入可", "Accepts"),
    "decline": Text("受入不可", "Declines"),
    "destination": Text("搬送先決定", "Destination"),
}

# Plausible ranges: outside them a value is flagged (usually a typing error), never refused.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    f.key: f.plausible for f in VITAL_FIELDS if f.plausible is not None
}
VITAL_LABELS: dict[str, Text] = {f.key: f.label for f in VITAL_FIELDS}
VITAL_UNITS = {f.key: f.unit for f in VITAL_FIELDS}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def out_of_range(name: str, value: float | None) -> bool:
    """True when ``value`` is outside the plausible range of vital ``name``."""
    if value is None or name not in PLAUSIBLE:
        return False
    lo, hi = PLAUSIBLE[name]
    return not lo <= value <= hi


def abnormal(name: str, value: float | str | None) -> bool:
    """True when ``value`` is past the prehospital alert threshold of vital ``name``."""
    f = VITAL_FIELD.get(name)
    number = _number(value)
    if f is None or number is None:
        return False
    return (f.low is not None and number < f.low) or (f.high is not None and number >= f.high)


@dataclass(frozen=True)
class VitalsDraft:
    """One set of vitals as keyed (any may be missing), taken at ``observed_at``.

    Its values are the keys of ``VITAL_FIELDS``; a new value is one attribute here and
    one row there.
    """

    systolic: float | None = None
    diastolic: float | None = None
    pulse: float | None = None
    respiration: float | None = None
    spo2: float | None = None
    temperature: float | None = None
    jcs: str | None = None  # JCS code, one of sync.fhir_case.JCS_LEVELS
    observed_at: datetime | None = None

    def value(self, name: str) -> float | str | None:
        out: float | str | None = getattr(self, name)
        return out

    def flagged(self) -> tuple[str, ...]:
        """The names of values outside their plausible range."""
        return tuple(n for n in PLAUSIBLE if out_of_range(n, _number(self.value(n))))

    def abnormal(self) -> tuple[str, ...]:
        """The names of abnormal values, and "shock_index" when pulse / systolic ≥ 1.0."""
        out = [f.key for f in VITAL_FIELDS if abnormal(f.key, self.value(f.key))]
        if self.pulse is not None and self.systolic and self.pulse / self.systolic >= 1.0:
            out.append("shock_index")
        return tuple(out)

    def is_empty(self) -> bool:
        return all(self.value(f.key) is None for f in VITAL_FIELDS)


@dataclass(frozen=True)
class Notice:
    """Something the paramedic must know, with the next step in the text."""

    text: Text
    level: str = "warning"  # "info" | "warning" | "error"
    code: str = ""


@dataclass(frozen=True)
class EraOffer:
    """A Western birth date the crew keyed, as the card prints it (照合番号B's first 6 digits).

    Shown for the crew to compare with the card; used only when they confirm.
    """

    western: Text = field(repr=False)  # 1980年3月1日
    era: str = field(repr=False)  # 昭和55年3月1日
    digits: str = field(repr=False)  # 550301


@dataclass(frozen=True)
class SummarySection:
    key: str
    title: Text
    lines: tuple[str, ...]  # empty: "no data" (記録なし) is shown, never a blank
    drugs: int | None = None  # a drug section: how many drugs (one line each, and a note)


@dataclass(frozen=True)
class HospitalRow:
    id: str
    name: str
    distance_km: float | None
    selected: bool = False
    sent: bool = False
    answer: str | None = None  # None (応答待ち once sent), "accept", "decline"
    # Once sent: "queued" (未送信（封緘して保存）), "sent" (the platform's 201), "received"
    # (the hospital has it); an answer says more.
    delivery: str | None = None
    reason: str | None = None  # a decline's reason (満床 ...), one of REFUSAL_REASONS

    def state(self) -> str | None:
        """The key of ``DELIVERY_TEXT`` for this row (None: not sent)."""
        if not self.sent:
            return None
        return self.answer or self.delivery or "queued"


@dataclass(frozen=True)
class CaseView:
    """Everything a screen may show, at one moment. No card data beyond what is verified."""

    stage: Stage
    case_open: bool = False
    card_used: bool = False
    progress: tuple[str, ...] = ()  # reading steps done: token, certificate, signature, attributes
    token_type: str | None = None  # card | android | iphone
    identity_options: tuple[IdentityMethod, ...] = ()
    pin_tries_left: int | None = None
    pin_needs_confirmation: bool = False
    collation_b_tries_left: int | None = None  # 照合番号B's own counter, never the PIN's
    collation_b_needs_confirmation: bool = False
    era_offer: EraOffer | None = None  # a Western birth date converted, awaiting the crew
    consent: Consent | None = None
    assurance: str | None = None
    certificate_ok: bool | None = None
    certificate_status: str | None = None  # key of CERTIFICATE_TEXT (who verified it)
    summary_status: str | None = None  # found | not_found | refused | unavailable | none
    summary: tuple[SummarySection, ...] = ()
    patient_label: str | None = None  # verified attributes (照合番号B), shown only then
    chief_complaint: str | None = None
    vitals: tuple[VitalsDraft, ...] = ()  # newest first
    vitals_selected: int | None = None  # the set being edited: its number (1 = first taken)
    hospitals: tuple[HospitalRow, ...] = ()
    destination: str | None = None
    destination_via: str | None = None  # "answer" (受入可) | "phone" (電話で受入確認済み)
    # "pending" (送信待ち) | "delivered" (the platform has it) | "refused:<code>"
    destination_state: str | None = None
    notice: Notice | None = None
    busy: bool = False
    # Status bar
    reader_ok: bool | None = None
    # The card of a finished case still lies on the reader (standby asks to take it away).
    card_left_on_reader: bool = False
    network_ok: bool | None = None
    platform_ok: bool | None = None
    # Everything in the outbox waiting to be sent (sealed cases and their intents) ...
    waiting_sealed: int = 0
    # ... and per kind, as the status bar names them: (("case", 1), ("destination", 1))
    waiting_by_kind: tuple[tuple[str, int], ...] = ()
    errors: tuple[str, ...] = field(default=())
