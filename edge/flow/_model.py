"""What the case flow shows: stages, choices and one immutable view of the case.

The UI renders a ``CaseView`` and nothing else; every word it needs comes as a
``Text`` (Japanese first, English for trainers). Values stay in memory only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from sync.reasons import CLOSURE_REASONS as _CLOSURE_REASONS
from sync.reasons import DECLINE_REASONS
from sync.vocabulary import (
    ASSURANCE_LABELS,
    AVAILABILITY_ITEM,
    AVAILABILITY_STATUSES,
    CONSENT_LABELS,
    ECG_RHYTHMS,
    EMS_TIMES,
    HEARD_KINDS,
    JCS_CHOICES,
    JCS_SUFFIXES,
    O2_PRESETS,
    PUPIL_REFLEXES,
    PUPIL_SIZES,
    SHOCK_INDEX,
    TREATMENTS,
    Label,
    VitalField,
    jcs_code,
    jcs_parts,
)
from sync.vocabulary import VITAL_FIELDS as ALL_VITAL_FIELDS

__all__ = [
    "AVAILABILITY_ITEM",
    "AVAILABILITY_STATUSES",
    "CHIEF_COMPLAINTS",
    "CLOSURE_REASONS",
    "DELIVERY_TEXT",
    "DERIVED_MARKS",
    "ECG_RHYTHMS",
    "EMS_TIMES",
    "HEARD_KINDS",
    "JCS_CHOICES",
    "JCS_SUFFIXES",
    "JST",
    "O2_PRESETS",
    "PLAUSIBLE",
    "PUPIL_REFLEXES",
    "PUPIL_SIZES",
    "REFUSAL_REASONS",
    "SHOCK_INDEX",
    "TREATMENTS",
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
    "jcs_code",
    "jcs_parts",
    "out_of_range",
]


# A message in both languages (Japanese first): the vocabulary's own class.
Text = Label


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


CONSENT_TEXT: Mapping[str, Text] = CONSENT_LABELS  # keyed by Consent (a str)


class IdentityMethod(enum.StrEnum):
    FACE = "face_check"
    PIN = "pin"
    COLLATION_B = "collation_b"


class Evidence(enum.StrEnum):
    """The platform's evidence kinds (its assurance levels follow from them)."""

    FACE_CHECK = "face_check"
    PIN_SIGNATURE = "pin_signature"
    COLLATION_B = "collation_b"


ASSURANCE_TEXT = ASSURANCE_LABELS

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

# Marks of a set that are no single value's (its screen names them like a value's).
DERIVED_MARKS: dict[str, Text] = {
    "shock_index": SHOCK_INDEX,
    "anisocoria": Text("瞳孔不同", "anisocoria"),
}

# 受入不可 reasons: the hospitals' fixed list (sync.reasons), as the screens name it.
REFUSAL_REASONS = DECLINE_REASONS

JST = timezone(timedelta(hours=9), "JST")  # the times the crew sees and keys


# The values the crew keys, in screen order (sync.fhir_case.VITAL_FIELDS: the one table of
# labels, units, ranges, thresholds and codes; a new value is a row there and an attribute
# of VitalsDraft).
VITAL_FIELDS: tuple[VitalField, ...] = tuple(f for f in ALL_VITAL_FIELDS if f.keyed)
# Every value by its key, the computed GCS total too (its label, its marks).
VITAL_FIELD = {f.key: f for f in ALL_VITAL_FIELDS}

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
    # The platform refused the case for its envelope version and it could not be sealed
    # again (sync.reseal): it reached nobody; the crew phones.
    "refused": Text("送信できませんでした（要電話）", "Not sent (phone)"),
    "destination": Text("搬送先決定", "Destination"),
}

# The route a case took (docs/disaster.md), in one table for the device and the dashboard.
ROUTE_TEXT: dict[str, Text] = {
    "platform": Text("プラットフォーム経由", "Via the platform"),
    "direct": Text("直接送信", "Sent directly"),
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
    f = VITAL_FIELD.get(name)
    return value is not None and f is not None and f.flagged(value)


def abnormal(name: str, value: float | str | None) -> bool:
    """True when ``value`` is past the prehospital alert threshold of vital ``name``."""
    f = VITAL_FIELD.get(name)
    if f is not None and f.choices:
        return isinstance(value, str) and f.choice_abnormal(value)
    number = _number(value)
    if f is None or number is None:
        return False
    return f.abnormal(number)


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
    o2: float | None = None  # L/min; 0 is room air (室内気)
    temperature: float | None = None
    jcs: str | None = None  # JCS code: level and suffixes (30RI)
    gcs_e: float | None = None
    gcs_v: float | None = None
    gcs_m: float | None = None
    pupil_l: float | None = None
    pupil_r: float | None = None
    reflex_l: str | None = None
    reflex_r: str | None = None
    ecg: str | None = None
    glucose: float | None = None
    cpss: str | None = None
    observed_at: datetime | None = None

    def value(self, name: str) -> float | str | None:
        if name == "gcs":
            return self.gcs_total
        out: float | str | None = getattr(self, name)
        return out

    @property
    def gcs_total(self) -> float | None:
        """E + V + M once all three are known."""
        parts = (self.gcs_e, self.gcs_v, self.gcs_m)
        return None if any(p is None for p in parts) else sum(p or 0 for p in parts)

    def flagged(self) -> tuple[str, ...]:
        """The names of values outside their plausible range."""
        return tuple(n for n in PLAUSIBLE if out_of_range(n, _number(self.value(n))))

    def abnormal(self) -> tuple[str, ...]:
        """The names of abnormal values (the GCS total ≤ 8 as "gcs"), "shock_index" when
        pulse / systolic ≥ 1.0 and "anisocoria" when the pupils differ by 1 mm or more."""
        out = [f.key for f in VITAL_FIELDS if abnormal(f.key, self.value(f.key))]
        if abnormal("gcs", self.gcs_total):
            out.append("gcs")
        if self.pulse is not None and self.systolic and self.pulse / self.systolic >= 1.0:
            out.append("shock_index")
        left, right = self.pupil_l, self.pupil_r
        if left is not None and right is not None and abs(left - right) >= 1.0:
            out.append("anisocoria")
        return tuple(out)

    def copy_at(self, moment: datetime | None) -> VitalsDraft:
        """A new set taken at ``moment`` that starts from this one's values."""
        return replace(self, observed_at=moment)

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
    # (the hospital has it), "refused" (the platform refused it for good: 送信できませんでした,
    # the crew phones); an answer says more.
    delivery: str | None = None
    reason: str | None = None  # a decline's reason (満床 ...), one of REFUSAL_REASONS
    # The route the case took: "platform" (プラットフォーム経由) | "direct" (直接送信: the
    # platform was cut off, docs/disaster.md); None while it has not left.
    route: str | None = None
    # The platform has this row's case (its 201): 直接送信 no longer says it cannot be reached.
    on_platform: bool = False
    # 応需状況 of what this patient needs (sync.vocabulary.COMPLAINT_NEEDS): (item code,
    # status now: available | consult | unavailable | unknown), and how old it is.
    availability: tuple[tuple[str, str], ...] = ()
    availability_age_s: float | None = None
    fit: int = 0  # sync.availability.fit_rank: 0 every need 可 ... 3 some 不可
    # 要電話: the platform takes post-quantum (v2) cases only and this hospital has no
    # hybrid key yet; it cannot be chosen for sending (the crew phones it).
    phone_only: bool = False

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
    chief_complaint_note: str | None = None  # free text beside the choice
    times: tuple[tuple[str, datetime], ...] = ()  # EMS_TIMES attr -> when (stamped or keyed)
    treatments: tuple[tuple[str, datetime, str | None], ...] = ()  # (code, when, note)
    estimate_age: int | None = None  # 推定
    estimate_sex: str | None = None  # 推定: male | female
    heard: tuple[tuple[str, tuple[str, ...]], ...] = ()  # HEARD_KINDS key -> lines
    eta_minutes: int | None = None  # keyed by the crew
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
    # 応需状況: whether the stream is up (else the statuses are the last snapshot's), and
    # the item codes this patient's 主訴 needs (empty: ordered by distance alone).
    availability_live: bool = False
    availability_needs: tuple[str, ...] = ()
