"""The emergency summary: a FHIR R4B document Bundle from one stored record."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from hub_server.medical._fhir import LOINC, ResourceFactory
from hub_server.medical._record import Item, Record, expand
from hub_server.medical._windows import EMERGENCY, FULL, JST, Window, cutoff, japan_today
from sync.fhir_case import SUMMARY_SECTIONS

__all__ = ["SECTIONS", "SECTION_SYSTEM", "build_summary_bundle"]

SECTION_SYSTEM = "http://kyukyu.example/fhir/CodeSystem/summary-section"
XHTML = "http://www.w3.org/1999/xhtml"

# (record key, title, LOINC section code): allergies and conditions first, then
# the order of the 救急用サマリー.
# The titles are the case vocabulary's (sync.fhir_case.SUMMARY_SECTIONS).
SECTIONS: tuple[tuple[str, str, str], ...] = tuple(
    (key, SUMMARY_SECTIONS[key].ja, loinc)
    for key, loinc in (
        ("allergies", "48765-2"),
        ("conditions", "11450-4"),
        ("visits", "46240-8"),
        ("eprescriptions", "10160-0"),
        ("medications", "10160-0"),
        ("surgeries", "47519-4"),
        ("treatments", "47519-4"),
        ("dialysis", "47519-4"),
        ("checks", "30954-2"),
    )
)
_EXPANDED = ("visits", "eprescriptions", "medications", "treatments", "dialysis")

Entry = tuple[str, dict[str, Any]]


def _window_key(item: Item) -> str:
    # A stay counts by its last day: a stay that ended last week is recent.
    end: str | None = item.get("end")
    return end if end is not None else str(item["d"])


def _select(items: Iterable[Item], window: Window, lo: str | None, today: str) -> list[Item]:
    dated = [i for i in items if _window_key(i) <= today and (lo is None or _window_key(i) >= lo)]
    dated.sort(key=_window_key, reverse=True)
    if window.latest_only:
        return dated[:1]
    return dated


def _narrative(lines: list[str]) -> dict[str, str]:
    body = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return {"status": "generated", "div": f'<div xmlns="{XHTML}"><ul>{body}</ul></div>'}


def build_summary_bundle(record: Record, *, now: datetime, full: bool = False) -> dict[str, Any]:
    """The 救急用サマリー (or, with ``full``, the 5-year view) of one record.

    Args:
        record: a stored patient record (format v1, see ``_record``).
        now: the time of the look-up; windows count in Japan dates.
        full: the full view (5 years, e-prescriptions 100 days).

    Returns:
        A FHIR R4B ``document`` Bundle as a JSON-able dict: Composition first
        (sections: allergies, conditions, then the summary items), Patient, the
        section resources in section order, then the referenced Organizations.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    today_date = japan_today(now)
    today = today_date.isoformat()
    windows = FULL if full else EMERGENCY
    bounds = {k: cutoff(today_date, w) for k, w in windows.items()}
    oldest = min(b for k, b in bounds.items() if k in _EXPANDED and b is not None)
    items: dict[str, list[Item]] = dict(expand(record, since=oldest))
    for key in ("surgeries", "checks"):
        items[key] = list(record.get(key, ()))

    f = ResourceFactory(today_date)
    sections: list[tuple[str, str, str, list[Entry], list[str]]] = []

    def add(key: str, made: Iterable[tuple[dict[str, Any], str]]) -> None:
        entries: list[Entry] = []
        lines: list[str] = []
        for res, line in made:
            entries.append((f.new_urn(), res))
            lines.append(line)
        _, title, loinc = next(s for s in SECTIONS if s[0] == key)
        sections.append((key, title, loinc, entries, lines))

    add("allergies", (f.allergy(i) for i in record.get("allergies", ())))
    visits_lo = bounds["visits"]
    conditions = [
        c
        for c in record.get("conditions", ())
        if c["d"] <= today
        and (c["s"] == "active" or visits_lo is None or c["d"] >= visits_lo.isoformat())
    ]
    conditions.sort(key=lambda c: (c["s"] != "active", c["d"]))
    add("conditions", (f.condition(c) for c in conditions))

    makers: dict[str, Callable[[Item], list[tuple[dict[str, Any], str]]]] = {
        "visits": lambda i: [f.encounter(i)],
        "eprescriptions": f.prescriptions,
        "medications": f.medications,
        "surgeries": lambda i: [f.procedure(i, "surgeries")],
        "treatments": lambda i: [f.procedure(i, "treatments")],
        "dialysis": lambda i: [f.procedure(i, "dialysis")],
        "checks": f.checks,
    }
    for key, _, _ in SECTIONS[2:]:
        lo = bounds[key]
        chosen = _select(items[key], windows[key], None if lo is None else lo.isoformat(), today)
        add(key, (pair for i in chosen for pair in makers[key](i)))

    now_iso = now.astimezone(JST).isoformat(timespec="seconds")
    title = "救急用サマリー（全期間表示）" if full else "救急用サマリー"
    composition = {
        "resourceType": "Composition",
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "full" if full else "emergency"}]},
        "status": "final",
        "type": {
            "coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}],
            "text": title,
        },
        "subject": {"reference": f.patient_ref},
        "date": now_iso,
        "author": [{"display": "マイナ救急 合成医療情報ソース"}],
        "title": title,
        "confidentiality": "R",
        "section": [
            _section(key, t, loinc, entries, lines) for key, t, loinc, entries, lines in sections
        ],
    }
    entry: list[dict[str, Any]] = [
        _entry(f.new_urn(), composition),
        _entry(f.patient_ref, f.patient(record["p"])),
    ]
    for _, _, _, entries, _ in sections:
        entry.extend(_entry(urn, res) for urn, res in entries)
    entry.extend(_entry(urn, res) for urn, res in f.org_resources())
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f.new_urn()},
        "type": "document",
        "timestamp": now_iso,
        "entry": entry,
    }


def _entry(urn: str, res: dict[str, Any]) -> dict[str, Any]:
    # Resource ids agree with their urn:uuid full URLs (as IPS documents do).
    body = {k: v for k, v in res.items() if k != "resourceType"}
    return {
        "fullUrl": urn,
        "resource": {"resourceType": res["resourceType"], "id": urn[9:], **body},
    }


def _section(
    key: str, title: str, loinc: str, entries: list[Entry], lines: list[str]
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "title": title,
        "code": {
            "coding": [{"system": SECTION_SYSTEM, "code": key}, {"system": LOINC, "code": loinc}],
            "text": title,
        },
    }
    if entries:
        section["text"] = _narrative(lines)
        section["entry"] = [{"reference": urn} for urn, _ in entries]
    else:
        section["text"] = _narrative(["記録なし"])
        section["emptyReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                    "code": "nilknown",
                }
            ],
            "text": "記録なし",
        }
    return section
