"""The 応需状況 line of a hospital row: what this patient needs, each item's status now,
and how old it is; marked when it comes from the last snapshot (no stream)."""

from __future__ import annotations

from edge.flow import AVAILABILITY_ITEM, AVAILABILITY_STATUSES, HospitalRow

__all__ = ["availability_line", "availability_source"]


def _age(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return ""
    minutes = int(seconds // 60)
    if lang == "en":
        return (
            "just now"
            if minutes < 1
            else f"{minutes} min ago"
            if minutes < 60
            else f"{minutes // 60} h ago"
        )
    return (
        "1分以内" if minutes < 1 else f"{minutes}分前" if minutes < 60 else f"{minutes // 60}時間前"
    )


def availability_line(row: HospitalRow, lang: str, live: bool) -> tuple[str, str]:
    """(text, css classes) of a row's 応需状況: ``脳神経外科 不可 ・ CT 可 （3分前）``.

    Classes: ``avail fit-N`` and ``st-<item>-<status>`` per need (for the kiosk's layout
    file and the tests), ``offline`` when read from the last snapshot."""
    if not row.availability:
        return ("", "avail")
    parts = []
    for code, status in row.availability:
        item = AVAILABILITY_ITEM.get(code)
        name = item.label.pick(lang) if item else code
        parts.append(f"{name} {AVAILABILITY_STATUSES[status].pick(lang)}")
    text = " ・ ".join(parts)
    age = _age(row.availability_age_s, lang)
    if age:
        text += f"（{age}）" if lang != "en" else f" ({age})"
    classes = ["avail", f"fit-{row.fit}", *(f"st-{c}-{s}" for c, s in row.availability)]
    if not live:
        classes.append("offline")
    return (text, " ".join(classes))


def availability_source(live: bool, lang: str) -> str:
    """Where the statuses come from: the live stream, or the last snapshot (offline)."""
    if live:
        return "応需状況: リアルタイム" if lang != "en" else "Availability: live"
    return (
        "応需状況: 最後に受信した情報（オフライン・古い可能性あり）"
        if lang != "en"
        else "Availability: last snapshot (offline, may be old)"
    )
