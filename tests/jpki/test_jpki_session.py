"""JpkiSession against scripted cards: the exact APDU bytes, every status word typed."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from edge.card_sim import CardImage
from edge.jpki import (
    BadSignature,
    InvalidPinFormat,
    JpkiSession,
    LastTryNeedsConfirmation,
    MalformedCertificate,
    NotMyNumberCard,
    PinBlocked,
    PinRequired,
    TokenType,
    UnknownToken,
    WrongPin,
    digest_info_sha256,
)
from edge.reader import ApduError, CardRemoved

from .fakes import OK, SELECT_JPKI, h, read, scripted, select_ef


def _label(text: str) -> bytes:
    return text.encode().ljust(32, b" ") + OK


def test_select_sends_select_by_df_name_and_never_mf() -> None:
    ch, card = scripted([(SELECT_JPKI, OK)])
    JpkiSession(ch).select()
    assert card.done()
    assert not any(a.startswith(h("00A40000")) for a in card.sent)


@pytest.mark.parametrize("sw", ["6A82", "6A86", "6D00", "6E00", "6F00"])
def test_not_a_my_number_card(sw: str) -> None:
    ch, _ = scripted([(SELECT_JPKI, h(sw))])
    with pytest.raises(NotMyNumberCard) as info:
        JpkiSession(ch).select()
    assert info.value.code == "not_my_number_card"
    assert info.value.message_ja
    assert info.value.message_en


def test_card_removed_passes_through() -> None:
    ch, _ = scripted([(SELECT_JPKI, CardRemoved)])
    with pytest.raises(CardRemoved):
        JpkiSession(ch).select()


@pytest.mark.parametrize(
    ("label", "token"),
    [
        ("JPKIAPICCTOKEN2", TokenType.CARD),
        ("JPKIAPICCTOKEN", TokenType.CARD),
        ("JPKIAPGPSETOKEN", TokenType.ANDROID),
        ("JPKIAPIOSTOKEN", TokenType.IPHONE),
    ],
)
def test_token_info(label: str, token: TokenType) -> None:
    ch, card = scripted([(SELECT_JPKI, OK), (select_ef(6), OK), (read(0, 32), _label(label))])
    info = JpkiSession(ch).token_info()
    assert (info.label, info.token_type) == (label, token)
    assert card.done()


def test_unknown_token_label() -> None:
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(6), OK), (read(0, 32), _label("FOO"))])
    with pytest.raises(UnknownToken):
        JpkiSession(ch).token_info()


def test_availability() -> None:
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(8), OK), (read(0, 3), h("8F8F00") + OK)])
    assert JpkiSession(ch).availability().signing_certificate
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(8), OK), (read(0, 3), h("008F00") + OK)])
    assert not JpkiSession(ch).availability().signing_certificate


def _cert_script(der: bytes, chunk: int = 256) -> list[tuple[str, bytes]]:
    """What the minimum read looks like when the card returns ``chunk`` bytes at most."""
    script: list[tuple[str, bytes]] = [(SELECT_JPKI, OK), (select_ef(0x0A), OK)]
    off = 0
    le = 256
    while off < len(der):
        got = der[off : off + min(chunk, le)]
        script.append((read(off, le), got + OK))
        off += len(got)
        le = min(256, len(der) - off)
    return script


def test_read_certificate_minimum_apdus(card_image: CardImage) -> None:
    der = card_image.auth_certificate_der
    assert der[:2] == h("3082")
    ch, card = scripted(_cert_script(der))
    assert JpkiSession(ch).read_auth_certificate() == der
    assert card.done()
    reads = [a for a in card.sent if a[1] == 0xB0]
    assert len(reads) == -(-len(der) // 256)  # ceil: one READ BINARY per 256 bytes
    assert card.sent[2] == h("00B0000000")  # first chunk with Le = 00 (256)


@pytest.mark.parametrize("chunk", [1, 4, 100, 255])
def test_read_certificate_copes_with_short_chunks(card_image: CardImage, chunk: int) -> None:
    der = card_image.auth_certificate_der
    ch, card = scripted(_cert_script(der, chunk))
    assert JpkiSession(ch).read_auth_certificate() == der
    assert card.done()


def test_read_certificate_card_returning_more_than_asked(card_image: CardImage) -> None:
    der = card_image.auth_certificate_der
    script = _cert_script(der)
    cmd, last = script[-1]
    # A card that pads the last answer past the DER: the extra bytes are dropped.
    script[-1] = (cmd, last[:-2] + b"\xff" * 8 + OK)
    ch, _ = scripted(script)
    assert JpkiSession(ch).read_auth_certificate() == der


def test_truncated_certificate_6b00(card_image: CardImage) -> None:
    der = card_image.auth_certificate_der
    script = [*_cert_script(der)[:3], (read(256, 256), h("6B00"))]
    ch, _ = scripted(script)
    with pytest.raises(MalformedCertificate):
        JpkiSession(ch).read_auth_certificate()


def test_truncated_certificate_empty_answer(card_image: CardImage) -> None:
    der = card_image.auth_certificate_der
    script = [*_cert_script(der)[:3], (read(256, 256), OK)]
    ch, _ = scripted(script)
    with pytest.raises(MalformedCertificate):
        JpkiSession(ch).read_auth_certificate()


@pytest.mark.parametrize("first", ["318204B6", "3080", "FFFF", "3085FFFFFFFFFF", "30FF"])
def test_malformed_der_header(first: str) -> None:
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(0x0A), OK), (read(0, 256), h(first) + OK)])
    with pytest.raises(MalformedCertificate):
        JpkiSession(ch).read_auth_certificate()


def test_der_that_does_not_parse() -> None:
    body = h("3010") + b"\x01" * 16
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(0x0A), OK), (read(0, 256), body + OK)])
    with pytest.raises(MalformedCertificate):
        JpkiSession(ch).read_auth_certificate()


def test_android_needs_pin_for_certificate() -> None:
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(0x0A), OK), (read(0, 256), h("6982"))])
    with pytest.raises(PinRequired) as info:
        JpkiSession(ch).read_auth_certificate()
    assert "暗証番号" in info.value.message_ja


@pytest.mark.parametrize("sw", ["6F00", "6A82", "6700", "6D00"])
def test_unexpected_status_words_are_typed(sw: str) -> None:
    ch, _ = scripted([(SELECT_JPKI, OK), (select_ef(0x0A), h(sw))])
    with pytest.raises(ApduError) as info:
        JpkiSession(ch).read_auth_certificate()
    assert info.value.sw == int(sw, 16)
    assert info.value.code
    assert info.value.message_ja
    assert info.value.message_en


def test_pin_attempts() -> None:
    ch, card = scripted([(SELECT_JPKI, OK), (select_ef(0x18), OK), ("00200080", h("63C3"))])
    assert JpkiSession(ch).auth_pin_attempts() == 3
    assert card.done()


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "", "１２３４", " 1234"])
def test_pin_format_checked_before_anything_is_sent(pin: str) -> None:
    ch, card = scripted([])
    with pytest.raises(InvalidPinFormat):
        JpkiSession(ch).verify_auth_pin(pin)
    assert card.sent == []


def _verify_script(counter: str, answer: str | None) -> list[tuple[str, bytes]]:
    s: list[tuple[str, bytes]] = [
        (SELECT_JPKI, OK),
        (select_ef(0x18), OK),
        ("00200080", h(counter)),
    ]
    if answer is not None:
        s.append(("002000800431323334", h(answer)))
    return s


def test_verify_pin_ok_tracks_login() -> None:
    ch, card = scripted(_verify_script("63C3", "9000"))
    s = JpkiSession(ch)
    s.verify_auth_pin("1234")
    assert s.logged_in
    assert card.done()


def test_wrong_pin_reports_tries_left() -> None:
    ch, _ = scripted(_verify_script("63C3", "63C2"))
    with pytest.raises(WrongPin) as info:
        JpkiSession(ch).verify_auth_pin("1234")
    assert info.value.tries_left == 2
    assert info.value.to_dict()["tries_left"] == 2
    assert "2" in info.value.message_ja


@pytest.mark.parametrize("counter", ["63C0", "6984", "6983"])
def test_blocked_pin_is_not_tried(counter: str) -> None:
    ch, card = scripted(_verify_script(counter, None))
    with pytest.raises(PinBlocked):
        JpkiSession(ch).verify_auth_pin("1234")
    assert card.done()  # no VERIFY with data was sent


@pytest.mark.parametrize("answer", ["63C0", "6983"])
def test_wrong_last_pin_blocks(answer: str) -> None:
    ch, _ = scripted(_verify_script("63C1", answer))
    with pytest.raises(PinBlocked):
        JpkiSession(ch).verify_auth_pin("1234", allow_last_try=True)


def test_one_try_left_needs_confirmation() -> None:
    ch, card = scripted(_verify_script("63C1", None))
    with pytest.raises(LastTryNeedsConfirmation) as info:
        JpkiSession(ch).verify_auth_pin("1234")
    assert info.value.tries_left == 1
    assert card.done()
    ch, card = scripted(_verify_script("63C1", "9000"))
    JpkiSession(ch).verify_auth_pin("1234", allow_last_try=True)
    assert card.done()


def _signature_script(der: bytes, message: bytes, answer: bytes) -> list[tuple[str, bytes]]:
    di = digest_info_sha256(message)
    return [
        *_verify_script("63C3", "9000"),
        *_cert_script(der)[1:],
        (select_ef(0x17), OK),
        ("802A0080" + f"{len(di):02X}" + di.hex() + "00", answer),
    ]


def test_sign_with_auth_key_checked(card_image: CardImage) -> None:
    message = b"challenge from the platform"
    sig = card_image.auth_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    der = card_image.auth_certificate_der
    ch, card = scripted(_signature_script(der, message, sig + OK))
    s = JpkiSession(ch)
    s.verify_auth_pin("1234")
    assert s.sign_with_auth_key(message) == sig
    assert card.done()
    assert digest_info_sha256(message)[-32:] == hashlib.sha256(message).digest()


@pytest.mark.parametrize("bad", [bytes(256), b"\x01" * 256, b"\x00" * 10])
def test_bad_signature_is_refused(card_image: CardImage, bad: bytes) -> None:
    message = b"challenge"
    ch, _ = scripted(_signature_script(card_image.auth_certificate_der, message, bad + OK))
    s = JpkiSession(ch)
    s.verify_auth_pin("1234")
    with pytest.raises(BadSignature):
        s.sign_with_auth_key(message)


def test_sign_without_login_sends_nothing() -> None:
    ch, card = scripted([])
    with pytest.raises(PinRequired):
        JpkiSession(ch).sign_with_auth_key(b"x")
    assert card.sent == []


def test_select_logs_out() -> None:
    ch, _ = scripted([*_verify_script("63C3", "9000"), (SELECT_JPKI, OK)])
    s = JpkiSession(ch)
    s.verify_auth_pin("1234")
    s.select()
    assert not s.logged_in
