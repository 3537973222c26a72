"""TextSession: exact APDUs for presence, and no way to reach the My Number."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from edge.card_sim import CardImage, VirtualCard
from edge.jpki import (
    BadSignature,
    InvalidCollationNumber,
    PinRequired,
    TextFile,
    TextSession,
    check_collation_b,
    digest_info_sha256,
)

from .fakes import OK, SELECT_TEXT, RecordingCard, TamperingCard, channel_for, scripted, select_ef


def _unlocked(card: object) -> TextSession:
    s = TextSession(channel_for(card))  # type: ignore[arg-type]
    s.select()
    s.unlock_with_pin("1234")
    return s


def test_prove_presence_exact_apdu(card_image: CardImage) -> None:
    challenge = b"\x01" * 32
    di = digest_info_sha256(challenge)
    rec = RecordingCard(VirtualCard(card_image))
    sig = _unlocked(rec).prove_presence(challenge)
    # 80 2A 00 00 Lc DigestInfo 00: no key EF selected, no credential of its own.
    assert rec.sent[-1].hex().upper() == "802A0000" + f"{len(di):02X}" + di.hex().upper() + "00"
    card_image.text_key.public_key().verify(sig, challenge, padding.PKCS1v15(), hashes.SHA256())
    # EF 0007 was read (behind the PIN) to check it.
    assert any(a.hex().upper() == "00A4020C020007" for a in rec.sent)


def test_presence_with_wrong_key(card_image: CardImage) -> None:
    def other_key(cmd: bytes, resp: bytes) -> bytes:
        if cmd[:2] != b"\x80\x2a":
            return resp
        return card_image.auth_key.sign(b"x", padding.PKCS1v15(), hashes.SHA256()) + OK

    with pytest.raises(BadSignature):
        _unlocked(TamperingCard(VirtualCard(card_image), other_key)).prove_presence(b"x")


def test_presence_needs_unlock(card_image: CardImage) -> None:
    s = TextSession(channel_for(VirtualCard(card_image)))
    s.select()
    with pytest.raises(PinRequired):  # EF 0007 is behind the PIN, A or B
        s.prove_presence(b"x")


def test_attributes_need_unlock_first() -> None:
    ch, card = scripted([])
    with pytest.raises(PinRequired):
        TextSession(ch).read_attributes()
    assert card.sent == []


def test_collation_b_exact_verify(card_image: CardImage) -> None:
    b = card_image.collation_b
    ch, card = scripted(
        [
            (SELECT_TEXT, OK),
            (select_ef(0x15), OK),
            ("00200080", bytes.fromhex("63CA")),
            ("002000800E" + b.encode().hex(), OK),
        ]
    )
    TextSession(ch).unlock_with_collation_b(b)
    assert card.done()


@pytest.mark.parametrize(
    "digits",
    [
        "",
        "1234567890123",
        "123456789012345",
        "00000020261234",  # era year 00 does not exist
        "65010120301234",  # 昭和65年 does not exist, 令和65年 is still to come
        "64010820301234",  # 昭和64年1月8日 is 平成元年
        "991231201412345"[:14],
        "abcdefghijklmn",
    ],
)
def test_collation_b_format(digits: str) -> None:
    with pytest.raises(InvalidCollationNumber):
        check_collation_b(digits)


def test_valid_collation_b() -> None:
    assert check_collation_b("12022920301234") == b"12022920301234"  # 平成12年2月29日
    assert check_collation_b("55021720301234") == b"55021720301234"  # 昭和55年2月17日
    assert check_collation_b("64010720301234")  # 昭和64年1月7日, the last day of 昭和
    assert check_collation_b("01010820301234")  # 平成元年1月8日 (and 令和元年 is not 1/8)


def test_malformed_entry_says_japanese_era() -> None:
    with pytest.raises(InvalidCollationNumber) as info:
        check_collation_b("19800217203012")  # the Western year keyed in
    assert "和暦" in info.value.message_ja
    assert "550217" in info.value.message_ja
    assert "Japanese era" in info.value.message_en


def test_no_my_number_files_in_the_api() -> None:
    fids = {v for k, v in vars(TextFile).items() if not k.startswith("_")}
    assert 0x0001 not in fids
    assert 0x0014 not in fids
    assert not hasattr(TextSession, "unlock_with_collation_a")


def test_every_text_flow_avoids_the_my_number(card_image: CardImage) -> None:
    from .fakes import my_number_apdus

    rec = RecordingCard(VirtualCard(card_image))
    s = TextSession(channel_for(rec))
    s.select()
    s.unlock_with_collation_b(card_image.collation_b)
    s.read_attributes()
    s.verify_integrity()
    s.prove_presence(b"x")
    s.select()
    s.unlock_with_pin(card_image.text_pin)
    s.read_attributes()
    s.verify_integrity()
    assert my_number_apdus(rec.sent) == []


def test_attempt_counters(fresh_image: CardImage) -> None:
    s = TextSession(channel_for(VirtualCard(fresh_image)))
    assert s.pin_attempts() == 3
    assert s.collation_b_attempts() == 10
