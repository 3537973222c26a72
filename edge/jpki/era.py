"""Japanese era dates (和暦) as the card face prints them: the birth-date part of 照合番号B.

照合番号B starts with the holder's birth date as printed on the card, in the
Japanese era: YYMMDD with YY the era year (1980-02-17 is 昭和55年2月17日 ->
``550217``). A paramedic keys it in from the card; when only the Western date
is known, ``collation_b_birth_part`` converts it.

Hand-written: five fixed era start dates (Gregorian). A PyPI library
(``japanera``) would add a dependency to the device for this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["ERAS", "Era", "EraDate", "collation_b_birth_part", "from_era_yymmdd", "to_era"]


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
    """The era date of a Western date (from Meiji on); ``ValueError`` before 1868-10-23."""
    for era in ERAS:
        if d >= era.start:
            return EraDate(era, d.year - era.start.year + 1, d.month, d.day)
    raise ValueError("date before the Meiji era")


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
