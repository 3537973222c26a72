"""The emergency summary Bundle as screen sections (allergies and conditions first).

Most sections are the Composition's narrative, one line per ``<li>``. Two are made to
be read at a glance: the drug sections are grouped one line per drug from their
resources (``_drugs``), the 電子処方箋 lines already dispensed (shown in 薬剤情報) are
one note, routine outpatient visits are one line per place, and a health check's results
are one line per date instead of one per value.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from sync.vocabulary import SUMMARY_SECTIONS

from ._drugs import DrugLine, group_drugs, medication_fill, not_dispensed
from ._model import SummarySection, Text

__all__ = ["SECTION_ORDER", "summary_sections"]

# The order on screen: allergies and conditions first, then the 救急用サマリー windows.
# Titles: the case vocabulary's (sync.fhir_case.SUMMARY_SECTIONS).
SECTION_ORDER: tuple[tuple[str, Text], ...] = tuple(
    (key, SUMMARY_SECTIONS[key])
    for key in (
        "allergies",
        "conditions",
        "medications",
        "eprescriptions",
        "visits",
        "surgeries",
        "treatments",
        "dialysis",
        "checks",
    )
)
_LI = re.compile(r"<li>(.*?)</li>", re.S)
_NO_DATA = "記録なし"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DATED = re.compile(r"(\d{4}/\d{2}/\d{2}) (.+)")
_OUTPATIENT = re.compile(r"(\d{4}/\d{2}/\d{2}) 外来 ([^（）〜]+)")
_DRUG_SECTIONS = ("medications", "eprescriptions")


def _dates(line: str) -> str:
    """Dates as the crews read them: YYYY/MM/DD."""
    return _ISO_DATE.sub(r"\1/\2/\3", line)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _key(section: Mapping[str, Any]) -> str | None:
    known = {k for k, _ in SECTION_ORDER}
    for coding in _list(_dict(section.get("code")).get("coding")):
        code = _dict(coding).get("code")
        if isinstance(code, str) and code in known:
            return code
    return None


def _resources(entries: list[Any]) -> dict[str, Any]:
    """The Bundle's resources by full URL (what a section's entry references)."""
    out: dict[str, Any] = {}
    for raw in entries:
        entry = _dict(raw)
        url = entry.get("fullUrl")
        if isinstance(url, str):
            out.setdefault(url, entry.get("resource"))
    return out


def _drugs(section: Mapping[str, Any], resources: Mapping[str, Any]) -> tuple[DrugLine, ...]:
    """One line per drug from the section's resources; () when it references none."""
    fills = []
    for ref in _list(section.get("entry")):
        url = _dict(ref).get("reference")
        fill = medication_fill(resources.get(url)) if isinstance(url, str) else None
        if fill is not None:
            fills.append(fill)
    return group_drugs(fills)


def _by_date(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Consecutive lines of one date as one line: ``2026/05/01 身長 170 cm、体重 68 kg``."""
    out: list[str] = []
    day: str | None = None
    for line in lines:
        m = _DATED.fullmatch(line)
        if m is not None and m[1] == day:
            out[-1] += f"、{m[2]}"
            continue
        day = m[1] if m is not None else None
        out.append(line)
    return tuple(out)


def _outpatient_by_place(lines: tuple[str, ...]) -> tuple[str, ...]:
    """Routine outpatient visits (no reason given) one line per place, where its newest
    visit was: ``2026/09/08〜2026/12/01 外来 山田循環器内科 計4回``. A stay, an emergency
    visit or a visit with a reason keeps its own line; a repeated line counts once."""
    places: dict[str, set[str]] = {}
    for line in lines:
        m = _OUTPATIENT.fullmatch(line)
        if m is not None:
            places.setdefault(m[2], set()).add(m[1])
    out: list[str] = []
    done: set[str] = set()
    for line in lines:
        m = _OUTPATIENT.fullmatch(line)
        if m is None:
            out.append(line)
        elif m[2] not in done:
            done.add(m[2])
            seen = places[m[2]]
            if len(seen) == 1:
                out.append(line)
            else:
                out.append(f"{min(seen)}〜{max(seen)} 外来 {m[2]} 計{len(seen)}回")
    return tuple(out)


def summary_sections(bundle: Mapping[str, Any] | None) -> tuple[SummarySection, ...]:
    """Every known section in screen order; an absent or empty one has no lines ("no data").

    The Bundle comes from the platform: anything malformed in it is skipped, never raised.
    A drug section whose resources cannot be read keeps its narrative lines as sent.
    """
    found: dict[str, tuple[str, ...]] = {}
    drugs: dict[str, tuple[DrugLine, ...]] = {}
    entries = _list(_dict(bundle).get("entry"))
    resources = _resources(entries)
    composition = _dict(_dict(entries[0]).get("resource")) if entries else {}
    for raw in _list(composition.get("section")):
        section = _dict(raw)
        key = _key(section)
        if key is None:
            continue
        div = _dict(section.get("text")).get("div")
        if not isinstance(div, str):
            div = ""
        lines = tuple(_dates(html.unescape(m).strip()) for m in _LI.findall(div))
        lines = tuple(line for line in lines if line and line != _NO_DATA)
        if key in _DRUG_SECTIONS:
            drugs[key] = _drugs(section, resources)
        elif key == "checks":
            lines = _by_date(lines)
        elif key == "visits":
            lines = _outpatient_by_place(lines)
        found[key] = lines
    counts: dict[str, int] = {}
    dispensed = drugs.get("medications", ())
    if dispensed:
        found["medications"] = tuple(d.text() for d in dispensed)
        counts["medications"] = len(dispensed)
    prescribed = drugs.get("eprescriptions", ())
    if prescribed:
        shown = not_dispensed(prescribed, dispensed)
        same = len(prescribed) - len(shown)
        note: tuple[str, ...] = ()
        if same:
            whom = f"ほか{same}剤は" if shown else f"{same}剤とも"
            note = (f"{whom}薬剤情報と同じ（調剤済み）",)
        found["eprescriptions"] = tuple(d.text() for d in shown) + note
        counts["eprescriptions"] = len(prescribed)
    return tuple(
        SummarySection(k, title, found.get(k, ()), counts.get(k)) for k, title in SECTION_ORDER
    )
