"""Japanese era dates (和暦) as the card face prints them: the birth-date part of 照合番号B.

照合番号B starts with the holder's birth date as printed on the card, in the
Japanese era: YYMMDD with YY the era year (1980-02-17 is 昭和55年2月17日 ->
``550217``). A paramedic keys it in from the card; when only the Western date
is known, ``era_of_birth_date`` reads what was keyed (``19800217`` or
``1980-02-17``) and converts it, with a typed error (``InvalidBirthDate``) for
a date that is impossible, before Meiji or after today. ``kyukyu card era`` and
the device's 照合番号B screen (through ``edge.flow``) both use it.

Hand-written: five fixed era start dates (Gregorian). A PyPI library
(``japanera``) would add a dependency to the device for this one table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ._errors import (
    BirthDateBeforeMeiji,
    BirthDateInFuture,
    BirthDateNotADate,
    InvalidBirthDate,
)

__all__ = [
    "ERAS",
    "Era",
    "EraDate",
    "collation_b_birth_part",
    "era_of_birth_date",
    "from_era_yymmdd",
    "parse_western_date",
    "to_era",
]

# 19800217 or 1980-02-17 (ASCII digits only: a full-width ０ is not a key on the pad).
_WESTERN_RE = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})")


@dataclass(frozen=True)
class Era:
    """One era: its name in kanji and romaji and its first day."""

    kanji: str
    romaji: str
    start: date


# Newest first. Meiji counts from 1868-10-23, the Gregorian day of the era change.
ERAS = (
    Era("令和", "Reiwa", date(2019, 5, 1)),
    Era("平成", "Heisei", date(1989, 1, 8)),
    Era("昭和", "Showa", date(1926, 12, 25)),
    Era("大正", "Taisho", date(1912, 7, 30)),
    Era("明治", "Meiji", date(1868, 10, 23)),
)


@dataclass(frozen=True)
class EraDate:
    """A date in an era: ``昭和55年2月17日`` is ``EraDate(<昭和>, 55, 2, 17)``."""

    era: Era
    year: int
    month: int
    day: int

    @property
    def yymmdd(self) -> str:
        """The 6 digits of 照合番号B's birth-date part."""
        return f"{self.year:02d}{self.month:02d}{self.day:02d}"

    def __str__(self) -> str:
        year = "元" if self.year == 1 else str(self.year)
        return f"{self.era.kanji}{year}年{self.month}月{self.day}日"


def to_era(d: date) -> EraDate:
    """The era date of a Western date (from Meiji on).

    Raises ``BirthDateBeforeMeiji`` (a ``ValueError``) before 1868-10-23.
    """
    for era in ERAS:
        if d >= era.start:
            return EraDate(era, d.year - era.start.year + 1, d.month, d.day)
    raise BirthDateBeforeMeiji()


def parse_western_date(text: str) -> date:
    """``"19800301"`` or ``"1980-03-01"`` -> ``date(1980, 3, 1)``.

    Raises ``InvalidBirthDate`` for another form and ``BirthDateNotADate`` for a day
    that does not exist (``19800230``). The value is never put in the error.
    """
    m = _WESTERN_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or (text.count("-") not in (0, 2)):
        raise InvalidBirthDate()
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise BirthDateNotADate("no such day") from None


def era_of_birth_date(text: str, *, today: date | None = None) -> EraDate:
    """A Western birth date as keyed -> its era date (``.yymmdd`` is 照合番号B's first 6).

    Raises ``InvalidBirthDate`` (not a date form) or its subclasses
    ``BirthDateNotADate``, ``BirthDateBeforeMeiji``, ``BirthDateInFuture``, each with
    a Japanese message for the screen.
    """
    d = parse_western_date(text)
    if d > (today or date.today()):
        raise BirthDateInFuture()
    return to_era(d)


def collation_b_birth_part(d: date) -> str:
    """1980-02-17 -> ``"550217"``: what the paramedic keys in first for 照合番号B."""
    return to_era(d).yymmdd


def from_era_yymmdd(digits: str, *, today: date | None = None) -> list[date]:
    """Every Western date that era form ``digits`` (YYMMDD) can stand for, newest era first.

    A birth date: never after ``today``. Empty when it is a date in no era (era year 00,
    31 February, 昭和65年, a 令和 year still to come ...).
    """
    last = today or date.today()
    if len(digits) != 6 or not digits.isascii() or not digits.isdigit():
        return []
    yy, mm, dd = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    out: list[date] = []
    if yy == 0:
        return out
    end: date | None = None
    for era in ERAS:
        try:
            d = date(era.start.year + yy - 1, mm, dd)
        except ValueError:
            d = None
        if d is not None and era.start <= d <= last and (end is None or d < end):
            out.append(d)
        end = era.start
    return out
