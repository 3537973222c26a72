"""照合番号B in the case flow: its own words and counter, and the Western-to-era conversion.

Against the virtual card and the real platform (the session's ``world``), like
``test_flow.py``. The card starts 照合番号B with 10 tries (jpki-card.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.card_sim import CardImage, VirtualCard
from edge.flow import CaseFlow, Consent, IdentityMethod, Stage
from tests.edge._world import TapReader, World, make_flow


@pytest.fixture
def reader() -> TapReader:
    return TapReader()


@pytest.fixture
def flow(world: World, tmp_path: Path, reader: TapReader) -> Iterator[CaseFlow]:
    f = make_flow(world, tmp_path, cards=reader)
    yield f
    f.close()


def at_collation_b(flow: CaseFlow, reader: TapReader, image: CardImage) -> None:
    reader.tap(VirtualCard(image))
    assert flow.wait_for_card(timeout=10)
    flow.choose_consent(Consent.CONSENTED)
    flow.choose_identity(IdentityMethod.COLLATION_B)
    assert flow.view().stage is Stage.COLLATION_B


def wrong_number(image: CardImage) -> str:
    """A well-formed 照合番号B that is not this card's (another security code)."""
    good = image.collation_b
    return good[:-4] + ("0000" if good[-4:] != "0000" else "1111")


def test_wrong_number_says_collation_b_with_tries_and_what_to_check(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    image = world.patient()
    at_collation_b(flow, reader, image)
    flow.submit_collation_b(wrong_number(image))
    v = flow.view()
    assert v.stage is Stage.COLLATION_B
    assert v.notice is not None
    assert v.notice.code == "wrong_collation_b"
    assert v.notice.text.ja.startswith("照合番号Bが違います。残り9回です。")
    assert "暗証番号" not in v.notice.text.ja
    assert "和暦" in v.notice.text.ja  # the next step: the era date printed on the card
    assert "セキュリティコード" in v.notice.text.ja
    assert v.notice.text.en.startswith("Wrong collation number B: 9 tries left.")
    assert v.collation_b_tries_left == 9
    assert v.pin_tries_left is None  # the PIN's counter is another one
    assert image.tries["text_collation_b"] == 9
    assert image.tries["text_pin"] == 3


def test_western_birth_date_keyed_as_era_is_said_before_the_card(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    image = world.patient()
    at_collation_b(flow, reader, image)
    # 19800301... keyed whole: month 80 is no date in any era; nothing reaches the card.
    western = image.holder.birth_date.strftime("%Y%m%d")
    flow.submit_collation_b((western + image.collation_b[6:])[:14])
    v = flow.view()
    assert v.stage is Stage.COLLATION_B
    assert v.notice is not None
    assert v.notice.code == "invalid_collation_b"
    assert "和暦" in v.notice.text.ja
    assert "西暦から和暦に変換" in v.notice.text.ja
    assert image.tries["text_collation_b"] == 10


def test_last_try_needs_confirmation_then_lock_falls_back(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    image = world.patient()
    image.tries["text_collation_b"] = 2
    at_collation_b(flow, reader, image)
    flow.submit_collation_b(wrong_number(image))
    assert flow.view().collation_b_tries_left == 1
    flow.submit_collation_b(wrong_number(image))  # not sent: the crew must confirm
    v = flow.view()
    assert v.stage is Stage.COLLATION_B
    assert v.collation_b_needs_confirmation
    assert not v.pin_needs_confirmation
    assert v.notice is not None
    assert "照合番号Bがロックされます（残り1回）" in v.notice.text.ja
    assert image.tries["text_collation_b"] == 1
    flow.submit_collation_b(wrong_number(image), confirm_last_try=True)
    v = flow.view()
    assert image.tries["text_collation_b"] == 0
    assert v.stage is Stage.IDENTITY
    assert IdentityMethod.COLLATION_B not in v.identity_options
    assert IdentityMethod.FACE in v.identity_options
    assert v.notice is not None
    assert v.notice.code == "collation_b_blocked"
    assert v.notice.text.ja.startswith("照合番号Bがロックされています")
    assert "暗証番号" not in v.notice.text.ja
    flow.choose_identity(IdentityMethod.FACE)
    assert flow.view().stage is Stage.SUMMARY


def test_last_try_confirmed_with_the_right_number_reads(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    image = world.patient()
    image.tries["text_collation_b"] = 1
    at_collation_b(flow, reader, image)
    flow.submit_collation_b(image.collation_b)
    assert flow.view().collation_b_needs_confirmation
    flow.submit_collation_b(image.collation_b, confirm_last_try=True)
    v = flow.view()
    assert v.stage is Stage.SUMMARY, v.notice
    assert v.assurance == "collation_b_device_attested"
    assert not v.collation_b_needs_confirmation


def test_western_birth_date_is_offered_in_the_era_then_reads(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    image = world.patient()
    at_collation_b(flow, reader, image)
    flow.convert_birth_date(image.holder.birth_date.strftime("%Y%m%d"))
    v = flow.view()
    assert v.stage is Stage.COLLATION_B
    offer = v.era_offer
    assert offer is not None
    assert offer.digits == image.collation_b[:6]
    assert v.notice is not None
    assert v.notice.code == "era_offer"
    assert offer.digits in v.notice.text.ja
    assert offer.era in v.notice.text.ja
    assert image.tries["text_collation_b"] == 10  # nothing was sent to the card
    flow.close_era_offer()
    assert flow.view().era_offer is None
    flow.submit_collation_b(offer.digits + image.collation_b[6:])
    v = flow.view()
    assert v.stage is Stage.SUMMARY, v.notice
    assert v.era_offer is None


@pytest.mark.parametrize(
    ("keyed", "era", "digits"),
    [
        ("19800301", "昭和55年3月1日", "550301"),
        ("1980-03-01", "昭和55年3月1日", "550301"),
        ("19950105", "平成7年1月5日", "070105"),
        ("19890107", "昭和64年1月7日", "640107"),
        ("19890108", "平成元年1月8日", "010108"),
        ("20190430", "平成31年4月30日", "310430"),
        ("20190501", "令和元年5月1日", "010501"),
        ("18681023", "明治元年10月23日", "011023"),
    ],
)
def test_conversion_at_the_era_boundaries(
    world: World, flow: CaseFlow, reader: TapReader, keyed: str, era: str, digits: str
) -> None:
    at_collation_b(flow, reader, world.patient())
    flow.convert_birth_date(keyed)
    offer = flow.view().era_offer
    assert offer is not None
    assert (offer.era, offer.digits) == (era, digits)


@pytest.mark.parametrize(
    ("keyed", "code", "said"),
    [
        ("18681022", "birth_date_before_meiji", "明治より前"),
        ("18000101", "birth_date_before_meiji", "明治より前"),
        ("19800230", "birth_date_not_a_date", "存在しない日付"),
        ("19801301", "birth_date_not_a_date", "存在しない日付"),
        ("20230229", "birth_date_not_a_date", "存在しない日付"),
        ("29990101", "birth_date_in_future", "今日より後"),
        ("800301", "invalid_birth_date", "西暦8桁"),
        ("", "invalid_birth_date", "西暦8桁"),
    ],
)
def test_dates_with_no_era_form_are_said_in_japanese(
    world: World, flow: CaseFlow, reader: TapReader, keyed: str, code: str, said: str
) -> None:
    at_collation_b(flow, reader, world.patient())
    flow.convert_birth_date("19800301")
    flow.convert_birth_date(keyed)  # a bad date drops the earlier offer
    v = flow.view()
    assert v.stage is Stage.COLLATION_B
    assert v.era_offer is None
    assert v.notice is not None
    assert v.notice.code == code
    assert said in v.notice.text.ja


def test_leaving_the_screen_drops_the_offer(
    world: World, flow: CaseFlow, reader: TapReader
) -> None:
    at_collation_b(flow, reader, world.patient())
    flow.convert_birth_date("19800301")
    flow.cancel_identity()
    assert flow.view().era_offer is None
