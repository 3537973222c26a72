"""One line per drug: the dispensing history of the summary grouped by drug.

The platform's 薬剤情報 (MedicationStatement, one per drug per dispensing) and 電子処方箋
(MedicationRequest, one per drug per prescription) repeat every monthly refill. The
crew needs each drug once: its latest prescription (name, directions, days), the first
and the last date the summary carries and how many fills that is::

    アムロジピン錠5mg 1日1回朝食後 1回1錠 28日分  2026/09/05〜2026/11/28 計4回

Everything here is pure and total: the resources come from the platform, so a missing
or malformed field is dropped (an unknown drug is still a line, a fill without a date
still counts), exact duplicates count once, and nothing raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = ["DRUG_DATES_SEP", "DrugLine", "Fill", "group_drugs", "medication_fill", "not_dispensed"]

UNKNOWN_DRUG = "薬剤名不明"
DRUG_DATES_SEP = "  "  # between the drug and its dates in a line (a screen may split there)
_MAX_TEXT = 80  # one field never fills the screen, whatever the platform sends
_MAX_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Fill:
    """One drug in one dispensing or prescription (any field may be unknown)."""

    name: str | None = None
    code: str | None = None
    on: date | None = None
    sig: str | None = None  # directions (用法)
    days: int | None = None  # days supplied (日分)
    source: str | None = None  # pharmacy or prescriber

    @property
    def drug(self) -> str:
        """What fills are grouped by: the product name (strength included), else its code."""
        return self.name or self.code or ""


@dataclass(frozen=True, slots=True)
class DrugLine:
    """One drug on the summary screen."""

    name: str
    sig: str | None  # of the latest fill
    days: int | None  # of the latest fill
    first: date | None  # earliest dated fill
    last: date | None  # latest dated fill
    fills: int  # distinct fills, undated ones included

    def text(self) -> str:
        head = " ".join(p for p in (self.name, self.sig) if p)
        if self.days is not None:
            head += f" {self.days}日分"
        if self.first is None or self.last is None:
            when = "日付不明"
        elif self.first == self.last:
            when = _ymd(self.last)
        else:
            when = f"{_ymd(self.first)}〜{_ymd(self.last)}"
        return f"{head}{DRUG_DATES_SEP}{when} 計{self.fills}回"


def _ymd(d: date) -> str:
    return f"{d.year:04d}/{d.month:02d}/{d.day:02d}"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first(value: Any) -> Mapping[str, Any]:
    return _dict(value[0]) if isinstance(value, list) and value else {}


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    # No control characters (a newline, a terminal escape) and no runs of spaces.
    clean = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    if len(clean) > _MAX_TEXT:
        clean = clean[: _MAX_TEXT - 1] + "…"
    return clean or None


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _days(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not 1 <= value <= _MAX_DAYS:  # NaN, none or absurd supply
        return None
    return int(value)


def medication_fill(resource: Any) -> Fill | None:
    """The fill a MedicationStatement (薬剤情報) or MedicationRequest (電子処方箋) records.

    None for anything else (another resource type, not a JSON object).
    """
    res = _dict(resource)
    kind = res.get("resourceType")
    if kind not in ("MedicationStatement", "MedicationRequest"):
        return None
    concept = _dict(res.get("medicationCodeableConcept"))
    coding = _first(concept.get("coding"))
    name = _text(concept.get("text")) or _text(coding.get("display"))
    code = _text(coding.get("code"))
    if kind == "MedicationStatement":
        period = _dict(res.get("effectivePeriod"))
        start, end = _date(period.get("start")), _date(period.get("end"))
        on = start or _date(res.get("dateAsserted"))
        days = _days((end - start).days + 1) if start and end else None
        sig = _text(_first(res.get("dosage")).get("text"))
        source = _text(_dict(res.get("informationSource")).get("display"))
    else:
        on = _date(res.get("authoredOn"))
        supply = _dict(_dict(res.get("dispenseRequest")).get("expectedSupplyDuration"))
        days = _days(supply.get("value"))
        sig = _text(_first(res.get("dosageInstruction")).get("text"))
        source = _text(_dict(res.get("requester")).get("display"))
    return Fill(name=name, code=code, on=on, sig=sig, days=days, source=source)


def _newest_first(fill: Fill) -> tuple[bool, date]:
    return (fill.on is not None, fill.on or date.min)


def group_drugs(fills: Iterable[Fill | None]) -> tuple[DrugLine, ...]:
    """One line per drug, the most recently filled first (undated-only drugs last).

    A drug is its product name (or, without one, its code); the line shows its latest
    fill's directions and days. Exact duplicates (same drug, date, directions, days and
    source) count once.
    """
    by_drug: dict[str, set[Fill]] = {}
    for fill in fills:
        if fill is not None:
            by_drug.setdefault(fill.drug, set()).add(fill)
    lines = []
    for drug, group in by_drug.items():
        dated = sorted(f.on for f in group if f.on is not None)
        # The latest fill; among fills of one day the one with the longest supply, so the
        # choice never depends on the order the platform sent them in.
        latest = max(group, key=lambda f: (*_newest_first(f), f.days or 0, f.sig or ""))
        lines.append(
            DrugLine(
                name=drug or UNKNOWN_DRUG,
                sig=latest.sig,
                days=latest.days,
                first=dated[0] if dated else None,
                last=dated[-1] if dated else None,
                fills=len(group),
            )
        )
    lines.sort(key=lambda d: (d.last is None, -(d.last or date.min).toordinal(), d.name))
    return tuple(lines)


def not_dispensed(
    prescribed: tuple[DrugLine, ...], dispensed: tuple[DrugLine, ...]
) -> tuple[DrugLine, ...]:
    """The prescribed drugs (電子処方箋) that 薬剤情報 does not already show as dispensed.

    A prescription is shown when its drug was never dispensed, or was prescribed again
    after the latest dispensing (possibly new directions); an undated one is always
    shown, since nothing says it was dispensed.
    """
    last = {d.name: d.last for d in dispensed}
    out = []
    for drug in prescribed:
        seen = last.get(drug.name)
        if drug.name not in last or drug.last is None or seen is None or drug.last > seen:
            out.append(drug)
    return tuple(out)
