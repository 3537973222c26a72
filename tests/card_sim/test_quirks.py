"""Each quirk in process, at the byte level."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edge.card_sim import CardImage, Quirks, VirtualCard
from edge.reader import ApduChannel, CardRemoved, LoopbackConnection

from .helpers import read, read_der, select_ap, select_ef


def _card_at_cert(issue: Callable[..., CardImage], quirks: Quirks) -> tuple[VirtualCard, bytes]:
    card = VirtualCard(issue(), quirks)
    card.power_on()
    for apdu in ("00A4040C0AD392F000260100000001", "00A4020C02000A"):
        assert card.process(bytes.fromhex(apdu)) == b"\x90\x00"
    return card, card.image.auth_certificate_der


def test_short_chunks(issue: Callable[..., CardImage]) -> None:
    card, der = _card_at_cert(issue, Quirks(read_chunk=50))
    out = card.process(bytes.fromhex("00B0000000"))
    assert out == der[:50] + b"\x90\x00"


def test_6cxx_at_end_of_file(issue: Callable[..., CardImage]) -> None:
    card, der = _card_at_cert(issue, Quirks(le_correction_at_eof=True))
    off = len(der) - 20
    cmd = bytes((0x00, 0xB0, off >> 8, off & 0xFF, 0x00))
    assert card.process(cmd) == b"\x6c\x14"
    assert card.process(cmd[:4] + b"\x14") == der[-20:] + b"\x90\x00"
    # Without the quirk the card answers the 20 bytes that are left.
    card.quirks = Quirks()
    assert card.process(cmd) == der[-20:] + b"\x90\x00"


def test_61xx_chaining_and_get_response(issue: Callable[..., CardImage]) -> None:
    card, der = _card_at_cert(issue, Quirks(chain_61xx=100))
    first = card.process(bytes.fromhex("00B0000000"))
    assert first == der[:100] + b"\x61\x9c"
    second = card.process(bytes.fromhex("00C000009C"))
    assert second == der[100:200] + b"\x61\x38"
    # Le larger than what is left: 6Cxx tells the right length.
    assert card.process(bytes.fromhex("00C0000040")) == b"\x6c\x38"
    assert card.process(bytes.fromhex("00C0000038")) == der[200:256] + b"\x90\x00"
    # Nothing pending any more.
    assert card.process(bytes.fromhex("00C0000010")) == b"\x69\x85"


def test_61xx_is_transparent_through_the_channel(issue: Callable[..., CardImage]) -> None:
    card = VirtualCard(issue(), Quirks(chain_61xx=64))
    ch = ApduChannel(LoopbackConnection(card))
    select_ap(ch, "jpki")
    assert read_der(ch, 0x000A) == card.image.auth_certificate_der


def test_slow_link_sleeps_per_byte(
    issue: Callable[..., CardImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("edge.card_sim._card.time.sleep", slept.append)
    card, _der = _card_at_cert(issue, Quirks(link_kbps=212, apdu_delay_s=0.002))
    slept.clear()
    out = card.process(bytes.fromhex("00B0000000"))
    assert len(out) == 258
    assert slept[0] == pytest.approx(0.002)
    assert slept[1] == pytest.approx((5 + 258 + 8) * 8 / 212_000)
    slept.clear()
    card.quirks = Quirks(link_kbps=106)
    card.process(bytes.fromhex("00B0000000"))
    assert slept == [pytest.approx((5 + 258 + 8) * 8 / 106_000)]


def test_removal_mid_read_then_next_tap(issue: Callable[..., CardImage]) -> None:
    card = VirtualCard(issue(), Quirks(remove_after_apdus=3))
    seen: list[bool] = []
    card.on_presence(seen.append)
    ch = ApduChannel(LoopbackConnection(card))
    select_ap(ch, "jpki")
    select_ef(ch, 0x000A)
    read(ch, 0, 4)
    with pytest.raises(CardRemoved):
        read(ch, 4, 256)
    assert not card.present
    assert seen == [False]
    with pytest.raises(CardRemoved):
        card.process(bytes.fromhex("00A4040C0AD392F000260100000001"))
    # The next tap: a new connection powers the card on; the quirk fired once.
    card.insert()
    ch = ApduChannel(LoopbackConnection(card))
    select_ap(ch, "jpki")
    assert read_der(ch, 0x000A) == card.image.auth_certificate_der
    assert seen == [False, True]


@pytest.mark.parametrize(
    "kw",
    [
        {"read_chunk": 0},
        {"chain_61xx": 0},
        {"link_kbps": 0},
        {"remove_after_apdus": -1},
        {"apdu_delay_s": -1.0},
    ],
)
def test_bad_quirks_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Quirks(**kw)  # type: ignore[arg-type]
