"""The emergency summary Bundle as screen sections (allergies and conditions first)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from ._model import SummarySection, Text

__all__ = ["SECTION_ORDER", "summary_sections"]

# The order on screen: allergies and conditions first, then the 救急用サマリー windows.
SECTION_ORDER: tuple[tuple[str, Text], ...] = (
    ("allergies", Text("アレルギー・副作用", "Allergies / adverse reactions")),
    ("conditions", Text("傷病名", "Conditions")),
    ("medications", Text("薬剤情報", "Medications")),
    ("eprescriptions", Text("電子処方箋", "e-Prescriptions")),
    ("visits", Text("受診歴", "Visits")),
    ("surgeries", Text("手術", "Surgeries")),
    ("treatments", Text("診療行為（処置）", "Treatments")),
    ("dialysis", Text("人工透析", "Dialysis")),
    ("checks", Text("特定健診", "Latest health check")),
)
_LI = re.compile(r"<li>(.*?)</li>", re.S)
_NO_DATA = "記録なし"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


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


def summary_sections(bundle: Mapping[str, Any] | None) -> tuple[SummarySection, ...]:
    """Every known section in screen order; an absent or empty one has no lines ("no data").

    The Bundle comes from the platform: anything malformed in it is skipped, never raised.
    """
    found: dict[str, tuple[str, ...]] = {}
    entries = _list(_dict(bundle).get("entry"))
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
        found[key] = tuple(line for line in lines if line and line != _NO_DATA)
    return tuple(SummarySection(k, title, found.get(k, ())) for k, title in SECTION_ORDER)
