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

from .fakes import OK, SELECT_TEXT, RecordingCard, channel_for, read, scripted, select_ef


def _cert_reads(der: bytes) -> list[tuple[str, bytes]]:
    out = [(select_ef(4), OK)]
    off, le = 0, 256
    while off < len(der):
        got = der[off : off + le]
        out.append((read(off, le), got + OK))
        off += len(got)
        le = min(256, len(der) - off)
    return out


def test_prove_presence_exact_apdu(card_image: CardImage) -> None:
    challenge = b"\x01" * 32
    di = digest_info_sha256(challenge)
    sig = card_image.text_key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
    script = [
        (SELECT_TEXT, OK),
        *_cert_reads(card_image.text_certificate_der),
        ("802A0000" + f"{len(di):02X}" + di.hex() + "00", sig + OK),
    ]
    ch, card = scripted(script)
    assert TextSession(ch).prove_presence(challenge) == sig
    assert card.done()


def test_presence_with_wrong_key(card_image: CardImage) -> None:
    challenge = b"\x02" * 32
    di = digest_info_sha256(challenge)
    sig = card_image.auth_key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
    script = [
        (SELECT_TEXT, OK),
        *_cert_reads(card_image.text_certificate_der),
        ("802A0000" + f"{len(di):02X}" + di.hex() + "00", sig + OK),
    ]
    ch, _ = scripted(script)
    with pytest.raises(BadSignature):
        TextSession(ch).prove_presence(challenge)


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
        "00000020261234",
        "991231201412345"[:14],
        "abcdefghijklmn",
    ],
)
def test_collation_b_format(digits: str) -> None:
    with pytest.raises(InvalidCollationNumber):
        check_collation_b(digits)


def test_valid_collation_b() -> None:
    assert check_collation_b("00022920301234") == b"00022920301234"  # 29 Feb 2000


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
