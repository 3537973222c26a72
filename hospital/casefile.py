"""What the dashboard shows of a case: read from the case's FHIR document Bundle.

The Composition's sections say which resources are the chief complaint, the
vitals and the emergency summary (the summary carries health-check
Observations with the same LOINC codes as vitals: only the vitals section's
count as vitals). Each set of vitals is a vital-signs panel with its values as
members, shown newest first with its time (``FIELDS``: one row per value).
Nothing is refused here: unknown or missing parts show as absent, a value that is
not a finite number as 判読不可, a time that cannot be shown as it was sent;
out-of-range vitals are flagged ⚠範囲外 and abnormal ones marked ◆異常 (product.md).
Texts and lists are clipped to what a screen can hold, with a note of what was left
out (``MAX_TEXT``, ``MAX_ITEMS``, ``MAX_SETS``). ``time_text``/``from_unix`` turn any
time into text without ever raising.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, ClassVar

from sync.fhir_case import (
    ASSURANCE_EXT,
    ASSURANCE_LABELS,
    BP_PANEL,
    CASE_ID_SYSTEM,
    CHIEF_COMPLAINT_SECTION,
    CONSENT_EXT,
    CONSENT_LABELS,
    DEVICE_ID_SYSTEM,
    EMS_TIME,
    EMS_TIMES,
    GENDER_LABELS,
    STAFF_ID_SYSTEM,
    SUMMARY_SECTION,
    SUMMARY_SECTIONS,
    VITAL_FIELD,
    VITAL_FIELDS,
    VITALS_PANEL,
    VITALS_SECTION,
    VitalField,
)
from sync.vocabulary import (
    ESTIMATED_AGE_EXT,
    ESTIMATED_SEX_EXT,
    ETA_EXT,
    HEARD_KINDS,
    HEARD_SECTION,
    PATIENT_SOURCE_EXT,
    SOURCE_LABELS,
    SOURCE_SYSTEM,
    SUMMARY_STATUS_EXT,
    TREATMENT_SYSTEM,
    TREATMENTS,
    TREATMENTS_SECTION,
)

__all__ = [
    "FIELDS",
    "MAX_SHORT",
    "RANGES",
    "UNSHOWABLE",
    "CaseView",
    "Vital",
    "VitalField",
    "VitalSet",
    "clip",
    "from_unix",
    "read_case",
    "time_text",
]

JST = timezone(timedelta(hours=9))
_NO_TIME = datetime.min.replace(tzinfo=UTC)
UNSHOWABLE = "表示できません"
MAX_TEXT = 10_000  # characters of one free text (a chief complaint, an allergy ...)
MAX_SHORT = 200  # a name, an ambulance, a phone number
MAX_ITEMS = 100  # entries of one list (allergies, medications, crew ...)
MAX_SETS = 500  # vitals sets shown of one case
MAX_AGE = 150


def time_text(moment: Any, fmt: str = "%H:%M") -> str:
    """``moment`` (an aware datetime) in JST as ``fmt``; never raises.

    None is "—"; a time whose JST date is past the calendar's ends (year 1 with a
    +14:00 offset, 9999-12-31T23:59:59Z) or anything but a datetime is marked.
    """
    if moment is None:
        return "—"
    if not isinstance(moment, datetime):
        return f"{UNSHOWABLE}（時刻不明）"
    try:
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return aware.astimezone(JST).strftime(fmt)
    except (OverflowError, ValueError):
        return f"{UNSHOWABLE}（時刻範囲外）"


def from_unix(seconds: Any) -> datetime | None:
    """Unix seconds as an aware datetime, or None when no calendar date can hold them."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` as a page can show it: at most ``limit`` characters (noted), valid UTF-8."""
    if len(text) > limit:
        text = f"{text[:limit]}…（以下省略・全{len(text)}文字）"
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON lets "\ud800" through)
        text = text.encode(errors="replace").decode()
    return text


def _clip_list(items: list[str]) -> list[str]:
    if len(items) > MAX_ITEMS:
        return [*items[:MAX_ITEMS], f"（ほか{len(items) - MAX_ITEMS}件は省略）"]
    return items


# The dashboard's columns: the numeric values of the vocabulary's one table (JCS, a
# choice, has its own column); a new value of the device's sets is a row there.
FIELDS: tuple[VitalField, ...] = tuple(f for f in VITAL_FIELDS if not f.choices)
FIELD = {f.key: f for f in FIELDS}
CHOICE_FIELDS: tuple[VitalField, ...] = tuple(f for f in VITAL_FIELDS if f.choices)
JCS = VITAL_FIELD["jcs"]
# The trend table's columns: every value, in the vocabulary's order (BP as one column).
TREND_KEYS: tuple[str, ...] = tuple(f.key for f in VITAL_FIELDS if f.key != "diastolic")

# Plausible ranges: flag, never refuse (values outside are usually typing errors).
RANGES: dict[str, tuple[float, float]] = {
    f.key: f.plausible for f in FIELDS if f.plausible is not None and f.keyed
}


@dataclass
class Vital:
    """One value; ``bad``: present but not a number the dashboard can show (marked)."""

    key: str
    value: float | None
    flagged: bool = False  # ⚠範囲外
    abnormal: bool = False  # ◆異常
    bad: bool = False

    def text(self) -> str:
        if self.bad:
            return "判読不可"
        if self.value is None:
            return "—"
        v, f = self.value, FIELD.get(self.key)
        if abs(v) >= 1e6:
            return f"{v:.3g}"
        if f is not None and f.decimals:
            return f"{v:.{f.decimals}f}"
        return f"{v:.0f}" if v.is_integer() else f"{v:.1f}"


def _marks(flag: bool, abnormal: bool) -> str:
    return " ".join(m for m, on in (("flag", flag), ("abnormal", abnormal)) if on)


# The card's tiles: one per value the doctor reads at a glance (the others are shown with
# them: diastolic with systolic, O2 with SpO2, E/V/M with the GCS total, the right pupil
# and both reflexes with the left pupil).
TILE_KEYS = (
    "systolic",
    "pulse",
    "respiration",
    "spo2",
    "temperature",
    "jcs",
    "gcs",
    "pupil_l",
    "ecg",
    "glucose",
    "cpss",
)


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    text: str
    unit: str
    sub: str  # what goes with it: 室内気 / O2 4L/分, E2V3M5, 迅速/緩慢 瞳孔不同
    state: str  # CSS classes: "flag" (⚠範囲外・判読不可), "abnormal" (◆異常), both or none


@dataclass
class VitalSet:
    """One set as the device took it: its time and values (``time_ja`` never raises)."""

    at: datetime | None
    values: dict[str, Vital] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # the choices (JCS, ECG ...)
    at_text: str | None = None  # the time as sent, when it is not a readable one

    def get(self, key: str) -> Vital:
        return self.values.get(key) or Vital(key, None)

    @property
    def jcs(self) -> str | None:
        return self.codes.get("jcs")

    def has(self, key: str) -> bool:
        return key in self.codes or key in self.values

    def cell(self, key: str) -> tuple[str, str]:
        """One value as the trend and the tiles show it, with its marks as CSS classes:
        "flag" (⚠範囲外・判読不可), "abnormal" (◆異常), both, or ""."""
        f = VITAL_FIELD[key]
        if f.choices:
            code = self.codes.get(key)
            if code is None:
                return "—", ""
            return clip(f.choice_label(code) or code, 20), _marks(False, f.choice_abnormal(code))
        if key == "systolic":
            s, d = self.get("systolic"), self.get("diastolic")
            flag = any(v.flagged or v.bad for v in (s, d))
            return f"{s.text()}/{d.text()}", _marks(flag, s.abnormal or d.abnormal)
        v = self.get(key)
        if key == "o2" and v.value == 0:
            return f.text(0.0), ""
        return v.text(), _marks(v.flagged or v.bad, v.abnormal)

    @property
    def time_ja(self) -> str:
        if self.at is not None:
            try:
                return self.at.astimezone(JST).strftime("%m/%d %H:%M")
            except (OverflowError, ValueError):
                return f"{self.at.isoformat()}（時刻範囲外）"
        return f"{self.at_text[:40]}（時刻不明）" if self.at_text else "時刻なし"

    @property
    def jcs_ja(self) -> str | None:
        return None if self.jcs is None else JCS.choice_label(self.jcs) or self.jcs[:20]

    def tiles(self) -> list[Tile]:
        """The set as the card's tiles and the trend's cells, in the vocabulary's order
        (blood pressure as one, SpO2 with its oxygen, GCS with E/V/M, both pupils)."""
        out = []
        for key in TILE_KEYS:
            f = VITAL_FIELD[key]
            text, state = self.cell(key)
            label, unit, sub = f.label.ja, f.unit, ""
            if key == "systolic":
                label = "血圧"
            elif key == "spo2":
                o2 = self.get("o2")
                sub = (
                    ""
                    if o2.value is None and not o2.bad
                    else (
                        VITAL_FIELD["o2"].text(0.0)
                        if o2.value == 0
                        else f"{VITAL_FIELD['o2'].short} {o2.text()}{VITAL_FIELD['o2'].unit}"
                    )
                )
            elif key == "gcs":
                parts = [self.cell(k) for k in ("gcs_e", "gcs_v", "gcs_m")]
                if any(t != "—" for t, _ in parts):
                    sub = "".join(f"{n}{t}" for n, (t, _) in zip("EVM", parts, strict=True))
                flags = any("flag" in st for _, st in parts)
                state = _marks(flags or "flag" in state, "abnormal" in state)
            elif key == "pupil_l":
                label, right = "瞳孔 左/右", self.cell("pupil_r")
                text = f"{text}/{right[0]}"
                reflexes = [self.cell(k) for k in ("reflex_l", "reflex_r")]
                if any(t != "—" for t, _ in reflexes):
                    sub = "/".join(t for t, _ in reflexes)
                states = " ".join((state, right[1], *(st for _, st in reflexes)))
                state = _marks("flag" in states, "abnormal" in states or self.anisocoria)
                if self.anisocoria:
                    sub = (sub + " 瞳孔不同").strip()
            out.append(Tile(key, label, text, unit, sub, state))
        return out

    @property
    def jcs_abnormal(self) -> bool:
        return self.jcs is not None and JCS.choice_abnormal(self.jcs)

    @property
    def anisocoria(self) -> bool:
        """瞳孔不同: the pupils differ by 1 mm or more (abnormal)."""
        left, right = self.get("pupil_l").value, self.get("pupil_r").value
        return left is not None and right is not None and abs(left - right) >= 1.0

    @property
    def shock_index(self) -> bool:
        """Shock index (pulse / systolic) ≥ 1.0: abnormal."""
        p, s = self.get("pulse").value, self.get("systolic").value
        return p is not None and s is not None and s > 0 and p / s >= 1.0

    @property
    def flagged(self) -> bool:
        return any(v.flagged or v.bad for v in self.values.values())


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
    patient_source: str | None = None  # "card" | "summary": where age and sex come from
    estimated_age: int | None = None  # 推定
    estimated_sex: str | None = None  # 推定 (男性 / 女性)
    chief_complaint_note: str | None = None
    times: dict[str, datetime | None] = field(default_factory=dict)  # EMS_TIMES attr -> time
    summary_status: str | None = None
    summary_present: bool = False
    heard: dict[str, list[str]] = field(default_factory=dict)  # HEARD_KINDS -> lines
    treatments: list[Treatment] = field(default_factory=list)  # in time order
    etas: list[tuple[str | None, datetime, str]] = field(default_factory=list)

    vitals_omitted: int = 0  # sets beyond MAX_SETS, oldest, not shown
    patient_age_bad: bool = False  # a birth date the case gives that makes no age

    @property
    def consent_ja(self) -> str:
        if self.consent is None:
            return "記録なし"
        label = CONSENT_LABELS.get(self.consent)
        return label.ja if label is not None else clip(self.consent, 40)

    @property
    def assurance_ja(self) -> str:
        if self.assurance is None:
            return "記録なし"
        label = ASSURANCE_LABELS.get(self.assurance)
        return label.ja if label is not None else clip(self.assurance, 40)

    @property
    def age_ja(self) -> str:
        if self.patient_age is not None:
            return f"{self.patient_age}歳"
        if self.patient_age_bad:
            return f"年齢{UNSHOWABLE}"
        if self.estimated_age is not None:
            return f"{self.estimated_age}歳（推定）"
        return "年齢不明"

    @property
    def sex_ja(self) -> str:
        if self.patient_sex is not None:
            return self.patient_sex
        if self.estimated_sex is not None:
            return f"{self.estimated_sex}（推定）"
        return "性別不明"

    @property
    def patient_source_ja(self) -> str:
        return {"card": "カード券面", "summary": "サマリー"}.get(self.patient_source or "", "")

    def source(self, kind: str) -> str:
        """Where the list ``kind`` (allergies, conditions, medications) comes from when it
        is empty: 記録なし, サマリー取得不可 or カードなし (the other two words, サマリー and
        聴取, head the items themselves)."""
        status = self.summary_status
        if status is None:
            status = "found" if self.summary_present else "unavailable"
        if status in ("found", "not_found"):
            return SOURCE_LABELS["none_recorded"].ja
        if status == "no_card":
            return SOURCE_LABELS["no_card"].ja
        return SOURCE_LABELS["summary_unavailable"].ja

    source_words: ClassVar[Mapping[str, str]] = {k: v.ja for k, v in SOURCE_LABELS.items()}
    heard_titles: ClassVar[Mapping[str, str]] = {k: v.ja for k, v in HEARD_KINDS.items()}
    ems_times = EMS_TIMES
    trend_keys = TREND_KEYS

    def time_of(self, attr: str) -> str:
        return time_text(self.times.get(attr))

    def eta_for(self, hospital_id: str | None) -> tuple[datetime, str] | None:
        """The arrival expected here: the crew's own estimate first, else the distance's."""
        mine = [(at, src) for hid, at, src in self.etas if hid is None or hid == hospital_id]
        mine.sort(key=lambda e: e[1] != "crew")
        return mine[0] if mine else None

    vital_fields = FIELDS  # the dashboard's columns, one per value
    summary_titles: ClassVar[Mapping[str, str]] = {k: s.ja for k, s in SUMMARY_SECTIONS.items()}

    @staticmethod
    def field(key: str) -> VitalField:
        return VITAL_FIELD[key]

    @property
    def latest(self) -> VitalSet | None:
        return self.vitals[0] if self.vitals else None

    @property
    def jcs_ja(self) -> str | None:
        return next((vs.jcs_ja for vs in self.vitals if vs.jcs is not None), None)

    @property
    def gcs(self) -> str | None:
        for vs in self.vitals:
            g = vs.values.get("gcs")
            if g is not None and (g.value is not None or g.bad):
                return g.text()
        return None

    def started_at(self) -> datetime | None:
        return self.call_at or self.contact_at


@dataclass(frozen=True)
class Treatment:
    """One 処置 as the card shows it."""

    at: datetime | None
    label: str
    note: str | None = None

    @property
    def time_ja(self) -> str:
        return time_text(self.at)


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


def _vital(key: str, res: dict[str, Any]) -> Vital:
    """The value of ``res.valueQuantity`` as vital ``key``: flagged, marked, or bad."""
    raw = _d(res.get("valueQuantity")).get("value")
    if raw is None:
        return Vital(key, None)
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond any float
            value = None
    if value is None or not math.isfinite(value):
        return Vital(key, None, bad=True)
    f = FIELD[key]
    return Vital(key, value, f.flagged(value), f.abnormal(value))


def _age(birth: Any, today: date) -> int | None:
    """The age on ``today``; None for no birth date; -1 for one that makes no age."""
    if birth is None:
        return None
    if not isinstance(birth, str):
        return -1
    try:
        b = date.fromisoformat(birth[:10])
    except ValueError:
        return -1
    age = today.year - b.year - ((today.month, today.day) < (b.month, b.day))
    return age if 0 <= age <= MAX_AGE else -1


def _has_id(res: dict[str, Any], system: str) -> bool:
    return any(_d(i).get("system") == system for i in _l(res.get("identifier")))


def _new_set(when: Any) -> VitalSet:
    at = _dt(when)
    return VitalSet(at, at_text=None if at is not None or when is None else str(when)[:80])


def _read_member(vs: VitalSet, res: dict[str, Any]) -> None:
    codes = {c for _, c in _codes(res.get("code"))}
    if BP_PANEL.code in codes:
        for comp in _l(res.get("component")):
            comp = _d(comp)
            ccodes = {c for _, c in _codes(comp.get("code"))}
            for f in FIELDS:
                if f.coding.code in ccodes and f.in_bp_panel:
                    vs.values[f.key] = _vital(f.key, comp)
    elif any(f.coding.code in codes for f in CHOICE_FIELDS):
        f = next(f for f in CHOICE_FIELDS if f.coding.code in codes)
        vcodes = _codes(res.get("valueCodeableConcept"))
        if vcodes:
            vs.codes[f.key] = vcodes[0][1]
    else:
        for f in FIELDS:
            if f.coding.code in codes and not f.in_bp_panel:
                vs.values[f.key] = _vital(f.key, res)


def _vital_sets(refs: list[str], by_url: dict[str, dict[str, Any]]) -> list[VitalSet]:
    """The sets of the バイタルサイン section, newest first.

    A set is a vital-signs panel (85353-1) with its values as ``hasMember``; values
    outside any panel (cases sealed before panels) are grouped by their time.
    """
    sets: list[VitalSet] = []
    in_panel: set[str] = set()
    loose: dict[str, VitalSet] = {}
    observations = [
        (url, by_url[url])
        for url in dict.fromkeys(refs)
        if by_url.get(url, {}).get("resourceType") == "Observation"
    ]
    for _, res in observations:
        if VITALS_PANEL.code in {c for _, c in _codes(res.get("code"))}:
            vs = _new_set(res.get("effectiveDateTime"))
            for member in _l(res.get("hasMember")):
                ref = _s(_d(member).get("reference"))
                if ref is not None and ref not in in_panel and ref in by_url:
                    in_panel.add(ref)
                    _read_member(vs, by_url[ref])
            sets.append(vs)
    for url, res in observations:
        codes = {c for _, c in _codes(res.get("code"))}
        if url in in_panel or VITALS_PANEL.code in codes:
            continue
        when = res.get("effectiveDateTime")
        key = when if isinstance(when, str) else repr(when)
        if key not in loose:
            loose[key] = _new_set(when)
        _read_member(loose[key], res)
    sets += loose.values()
    # Sorted on the UTC instant; aware datetimes compare without conversion overflows.
    return sorted(sets, key=lambda v: v.at or _NO_TIME, reverse=True)


def _short(value: Any) -> str | None:
    return None if not isinstance(value, str) else clip(value, MAX_SHORT)


def _resources(bundle: Any) -> dict[str, dict[str, Any]]:
    """The Bundle's resources by their ``fullUrl`` (entries that are not objects are skipped)."""
    entries = [e for e in _l(_d(bundle).get("entry")) if isinstance(e, dict)]
    return {
        str(e.get("fullUrl")): e["resource"] for e in entries if isinstance(e.get("resource"), dict)
    }


def _sections(by_url: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Section code -> the references its entries make (every Composition's sections)."""
    sections: dict[str, list[str]] = {}
    for res in by_url.values():
        if res.get("resourceType") != "Composition":
            continue
        for sec in _l(res.get("section")):
            sec = _d(sec)
            refs = [str(_d(r).get("reference")) for r in _l(sec.get("entry"))]
            for _, code in _codes(sec.get("code")):
                sections.setdefault(code, []).extend(refs)
    return sections


def _chief_complaint(
    refs: list[str], by_url: dict[str, dict[str, Any]]
) -> tuple[str | None, str | None]:
    """The last text the 主訴 section names and its free-text note (clipped)."""
    out, note = None, None
    for url in refs:
        res = by_url.get(url, {})
        text = _s(res.get("valueString"))
        if text is not None:
            out = clip(text)
            notes = [t for n in _l(res.get("note")) if (t := _s(_d(n).get("text")))]
            note = clip(" ".join(notes)) if notes else None
    return out, note


def _read_heard(view: CaseView, refs: list[str], by_url: dict[str, dict[str, Any]]) -> None:
    """What the crew heard on scene (tagged 聴取), kept apart from the summary's."""
    kinds = {
        "AllergyIntolerance": ("allergies", "code"),
        "Condition": ("conditions", "code"),
        "MedicationStatement": ("medications", "medicationCodeableConcept"),
    }
    for url in refs:
        res = by_url.get(url, {})
        kind = kinds.get(str(res.get("resourceType")))
        tags = _l(_d(res.get("meta")).get("tag"))
        heard = any(_d(t).get("system") == SOURCE_SYSTEM for t in tags)
        if kind is None or not heard:
            continue
        text = _text(res.get(kind[1]))
        if text:
            view.heard.setdefault(kind[0], []).append(clip(text))


def _read_treatments(view: CaseView, refs: list[str], by_url: dict[str, dict[str, Any]]) -> None:
    for url in refs:
        res = by_url.get(url, {})
        if res.get("resourceType") != "Procedure":
            continue
        codes = [c for sys, c in _codes(res.get("code")) if sys == TREATMENT_SYSTEM]
        label = TREATMENTS[codes[0]].ja if codes and codes[0] in TREATMENTS else None
        label = label or _text(res.get("code")) or "（処置名不明）"
        notes = [t for n in _l(res.get("note")) if (t := _s(_d(n).get("text")))]
        note = clip(" ".join(notes), MAX_SHORT) if notes else None
        view.treatments.append(Treatment(_dt(res.get("performedDateTime")), clip(label), note))
    view.treatments.sort(key=lambda t: t.at or _NO_TIME)


def _allergy_line(res: dict[str, Any]) -> str:
    text = _text(res.get("code")) or "（名称不明）"
    reactions = [
        t
        for r in _l(res.get("reaction"))
        for m in _l(_d(r).get("manifestation"))
        if (t := _text(m))
    ]
    return clip(f"{text}（{'、'.join(reactions)}）" if reactions else text)


def _condition_line(res: dict[str, Any]) -> str:
    status = [c for _, c in _codes(res.get("clinicalStatus"))]
    text = _text(res.get("code")) or "（名称不明）"
    if status and status[0] not in ("active", "recurrence", "relapse"):
        text += "（治癒・寛解）"
    return clip(text)


def _medication_line(res: dict[str, Any]) -> str:
    text = _text(res.get("medicationCodeableConcept")) or "（薬剤名不明）"
    dosage = _l(res.get("dosage")) or _l(res.get("dosageInstruction"))
    sig = _s(_d(dosage[0]).get("text")) if dosage else None
    return clip(f"{text} {sig}" if sig else text)


def _read_summary(view: CaseView, refs: list[str], by_url: dict[str, dict[str, Any]]) -> None:
    """Allergies, conditions and medications of the emergency summary section."""
    for url in refs:
        res = by_url.get(url, {})
        kind = res.get("resourceType")
        if kind == "AllergyIntolerance":
            view.allergies.append(_allergy_line(res))
        elif kind == "Condition":
            view.conditions.append(_condition_line(res))
        elif kind in ("MedicationStatement", "MedicationRequest"):
            line = _medication_line(res)
            if line not in view.medications:
                view.medications.append(line)


def _read_encounter(view: CaseView, res: dict[str, Any]) -> None:
    """Consent, identity assurance and the EMS times (extensions of the case's Encounter)."""
    for ext in _l(res.get("extension")):
        ext = _d(ext)
        ext_url = ext.get("url")
        if ext_url == CONSENT_EXT:
            view.consent = _s(ext.get("valueCode"))
        elif ext_url == ASSURANCE_EXT:
            view.assurance = _s(ext.get("valueCode"))
        elif ext_url == SUMMARY_STATUS_EXT:
            view.summary_status = _s(ext.get("valueCode"))
        elif ext_url == ETA_EXT:
            parts = {_d(x).get("url"): _d(x) for x in _l(ext.get("extension"))}
            arrival = _dt(parts.get("arrival", {}).get("valueDateTime"))
            source = _s(parts.get("source", {}).get("valueCode")) or "crew"
            hospital = _s(parts.get("hospital", {}).get("valueString"))
            if arrival is not None:
                view.etas.append((hospital, arrival, source))
        for t in EMS_TIMES:
            if ext_url == t.url:
                view.times[t.attr] = _dt(ext.get("valueDateTime"))
    view.call_at = view.times.get(EMS_TIME["call_received"].attr)
    view.contact_at = view.times.get(EMS_TIME["patient_contact"].attr)
    if view.contact_at is None:
        view.contact_at = _dt(_d(res.get("period")).get("start"))


def _read_device(view: CaseView, res: dict[str, Any]) -> None:
    """The ambulance, its fire department (as the case claims) and its phone numbers."""
    names = _l(res.get("deviceName"))
    if names:
        view.ambulance = _short(_d(names[0]).get("name"))
    view.fire_department = _short(_d(res.get("owner")).get("display"))
    view.crew_phones += [str(_d(c)["value"]) for c in _l(res.get("contact")) if _d(c).get("value")]


def _read_practitioner(view: CaseView, res: dict[str, Any]) -> None:
    """One crew member (role and name) and their phone numbers."""
    role = next((_text(_d(q).get("code")) for q in _l(res.get("qualification"))), None)
    name = next((_s(_d(n).get("text")) for n in _l(res.get("name"))), None)
    view.crew.append(clip(" ".join(x for x in (role, name) if x) or "隊員", MAX_SHORT))
    view.crew_phones += [str(_d(t)["value"]) for t in _l(res.get("telecom")) if _d(t).get("value")]


def _read_patient(view: CaseView, res: dict[str, Any], today: date) -> None:
    """Name, age on ``today`` (or that the birth date makes none) and sex."""
    names = _l(res.get("name"))
    if names:
        view.patient_name = _short(_d(names[0]).get("text"))
    age = _age(res.get("birthDate"), today)
    view.patient_age = None if age == -1 else age
    view.patient_age_bad = age == -1
    sex = GENDER_LABELS.get(str(res.get("gender")))
    view.patient_sex = None if sex is None or res.get("gender") == "unknown" else sex.ja
    for ext in _l(res.get("extension")):
        ext = _d(ext)
        if ext.get("url") == PATIENT_SOURCE_EXT:
            view.patient_source = _s(ext.get("valueCode"))
        elif ext.get("url") == ESTIMATED_AGE_EXT:
            age = _d(ext.get("valueAge")).get("value")
            if isinstance(age, int) and not isinstance(age, bool) and 0 <= age <= MAX_AGE:
                view.estimated_age = age
        elif ext.get("url") == ESTIMATED_SEX_EXT:
            guess = GENDER_LABELS.get(str(ext.get("valueCode")))
            view.estimated_sex = None if guess is None else guess.ja


def _read_people(view: CaseView, by_url: dict[str, dict[str, Any]], today: date) -> None:
    """The case's Encounter, ambulance, crew and (first named) patient, in document order."""
    for res in by_url.values():
        kind = res.get("resourceType")
        if kind == "Encounter" and _has_id(res, CASE_ID_SYSTEM):
            _read_encounter(view, res)
        elif kind == "Device" and _has_id(res, DEVICE_ID_SYSTEM):
            _read_device(view, res)
        elif kind == "Practitioner" and _has_id(res, STAFF_ID_SYSTEM):
            _read_practitioner(view, res)
        elif kind == "Patient" and view.patient_name is None:
            _read_patient(view, res, today)


def _clip_lists(view: CaseView) -> None:
    view.allergies = _clip_list(view.allergies)
    view.conditions = _clip_list(view.conditions)
    view.medications = _clip_list(view.medications)
    view.crew = _clip_list(view.crew)
    view.heard = {k: _clip_list(v) for k, v in view.heard.items()}
    view.etas = view.etas[:MAX_ITEMS]
    view.crew_phones = [clip(p, 40) for p in view.crew_phones[:MAX_ITEMS]]


def read_case(case_id: str, bundle: dict[str, Any], *, today: date | None = None) -> CaseView:
    """What the dashboard shows of ``bundle``; never refuses (see the module's docstring)."""
    view = CaseView(case_id=case_id)
    by_url = _resources(bundle)
    sections = _sections(by_url)
    view.chief_complaint, view.chief_complaint_note = _chief_complaint(
        sections.get(CHIEF_COMPLAINT_SECTION.code, []), by_url
    )
    sets = _vital_sets(sections.get(VITALS_SECTION.code, []), by_url)
    view.vitals, view.vitals_omitted = sets[:MAX_SETS], max(0, len(sets) - MAX_SETS)
    _read_summary(view, sections.get(SUMMARY_SECTION.code, []), by_url)
    view.summary_present = bool(sections.get(SUMMARY_SECTION.code))
    _read_heard(view, sections.get(HEARD_SECTION.code, []), by_url)
    _read_treatments(view, sections.get(TREATMENTS_SECTION.code, [])[:MAX_ITEMS], by_url)
    _read_people(view, by_url, today or datetime.now(UTC).date())
    _clip_lists(view)
    return view
