"""The 救急用サマリー look-back windows (product.md) and their date arithmetic.

Windows count in Japan calendar dates: an item dated exactly on the cut-off is
in ("45 days" keeps an item 45 days old, drops one 46 days old); items dated
after today are not yet part of the record.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["EMERGENCY", "FULL", "JST", "Window", "cutoff", "japan_today", "minus_months"]

JST = timezone(timedelta(hours=9), "JST")


@dataclass(frozen=True, slots=True)
class Window:
    """A look-back of ``days`` days or ``months`` calendar months (None: latest only)."""

    days: int | None = None
    months: int | None = None
    latest_only: bool = False


# Section -> window. Allergies and conditions have none (always shown).
EMERGENCY: dict[str, Window] = {
    "visits": Window(months=3),
    "eprescriptions": Window(days=45),
    "medications": Window(months=3),
    "surgeries": Window(months=60),
    "treatments": Window(months=3),
    "dialysis": Window(months=3),
    "checks": Window(latest_only=True),
}

FULL: dict[str, Window] = {
    "visits": Window(months=60),
    "eprescriptions": Window(days=100),
    "medications": Window(months=60),
    "surgeries": Window(months=60),
    "treatments": Window(months=60),
    "dialysis": Window(months=60),
    "checks": Window(months=60),
}


def japan_today(now: datetime) -> date:
    """The date in Japan at ``now`` (a naive ``now`` is taken as UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(JST).date()


def minus_months(d: date, months: int) -> date:
    """``d`` moved back by calendar months, clamped to the month's last day."""
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    m += 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def cutoff(today: date, window: Window) -> date | None:
    """The oldest date still inside ``window`` (None when the window has no bound)."""
    if window.days is not None:
        return today - timedelta(days=window.days)
    if window.months is not None:
        return minus_months(today, window.months)
    return None
