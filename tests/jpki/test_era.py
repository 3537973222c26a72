"""照合番号B's birth-date part: the Japanese era as printed on the card face."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.card_sim import era_yymmdd as simulator_era
from edge.jpki import BirthDateBeforeMeiji, BirthDateInFuture, BirthDateNotADate, InvalidBirthDate
from edge.jpki.era import collation_b_birth_part, era_of_birth_date, from_era_yymmdd, to_era


@pytest.mark.parametrize(
    ("western", "digits", "printed"),
    [
        (date(1980, 2, 17), "550217", "昭和55年2月17日"),  # the example of jpki-card.md
        (date(1926, 12, 25), "011225", "昭和元年12月25日"),
        (date(1989, 1, 7), "640107", "昭和64年1月7日"),
        (date(1989, 1, 8), "010108", "平成元年1月8日"),
        (date(2019, 4, 30), "310430", "平成31年4月30日"),
        (date(2019, 5, 1), "010501", "令和元年5月1日"),
        (date(1925, 3, 1), "140301", "大正14年3月1日"),
        (date(2024, 2, 29), "060229", "令和6年2月29日"),
    ],
)
def test_known_dates(western: date, digits: str, printed: str) -> None:
    assert collation_b_birth_part(western) == digits
    assert str(to_era(western)) == printed
    assert western in from_era_yymmdd(digits, today=date(2026, 11, 29))


def test_ambiguous_forms_list_every_era() -> None:
    # 令和元年5月1日 and 平成元年5月1日; 昭和元年, 大正元年 and 明治元年 began later in the year.
    assert from_era_yymmdd("010501", today=date(2026, 1, 1)) == [
        date(2019, 5, 1),
        date(1989, 5, 1),
    ]
    assert from_era_yymmdd("550217", today=date(2026, 1, 1)) == [date(1980, 2, 17)]
    assert from_era_yymmdd("070101", today=date(2024, 12, 31)) == [
        date(1995, 1, 1),
        date(1932, 1, 1),
        date(1918, 1, 1),
        date(1874, 1, 1),
    ]  # 令和7年 has not come yet on that day


@given(st.dates(min_value=date(1868, 10, 23), max_value=date(2026, 11, 29)))
def test_round_trip_and_agrees_with_the_simulator(d: date) -> None:
    digits = collation_b_birth_part(d)
    assert digits == simulator_era(d)  # two tables written independently
    assert d in from_era_yymmdd(digits, today=date(2026, 11, 29))


@given(st.text(max_size=8))
def test_any_text_gives_a_list(s: str) -> None:
    assert isinstance(from_era_yymmdd(s), list)


@pytest.mark.parametrize(
    ("keyed", "printed", "digits"),
    [
        ("19800301", "昭和55年3月1日", "550301"),
        ("1980-03-01", "昭和55年3月1日", "550301"),
        ("19890107", "昭和64年1月7日", "640107"),
        ("19890108", "平成元年1月8日", "010108"),
        ("2019-04-30", "平成31年4月30日", "310430"),
        ("2019-05-01", "令和元年5月1日", "010501"),
    ],
)
def test_era_of_a_keyed_birth_date(keyed: str, printed: str, digits: str) -> None:
    era = era_of_birth_date(keyed, today=date(2026, 11, 29))
    assert (str(era), era.yymmdd) == (printed, digits)


@pytest.mark.parametrize(
    ("keyed", "error"),
    [
        ("18681022", BirthDateBeforeMeiji),
        ("19800230", BirthDateNotADate),
        ("19000229", BirthDateNotADate),  # 1900 is not a leap year
        ("20261130", BirthDateInFuture),
        ("1980-0301", InvalidBirthDate),
        ("８０0301", InvalidBirthDate),
        ("550301", InvalidBirthDate),
    ],
)
def test_keyed_dates_with_no_era_form_are_typed(keyed: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        era_of_birth_date(keyed, today=date(2026, 11, 29))
    assert isinstance(info.value, InvalidBirthDate)
    assert isinstance(info.value, ValueError)
    assert info.value.message_ja
    assert keyed not in str(info.value)  # a birth date never goes into an error


def test_before_meiji_is_typed_in_to_era() -> None:
    with pytest.raises(BirthDateBeforeMeiji):
        to_era(date(1868, 10, 22))
