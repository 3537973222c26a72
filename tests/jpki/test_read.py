"""The one-tap flow against the virtual card in process: quirks, tokens, every bad input."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from edge.card_sim import CardImage, KeyPool, Quirks, TestCA, VirtualCard
from edge.jpki import (
    BadSignature,
    Expired,
    IntegrityError,
    InvalidCollationNumber,
    LastTryNeedsConfirmation,
    MalformedCertificate,
    NotMyNumberCard,
    NotYetValid,
    PinBlocked,
    PinNotTried,
    PinRequired,
    Revoked,
    TokenType,
    UntrustedIssuer,
    WrongCollationNumber,
    WrongPin,
    WrongPolicy,
)
from edge.jpki.read import (
    CardReadResult,
    CertificateStatus,
    CheckStatus,
    ReadOptions,
    read_card,
)
from edge.jpki.revocation import RevocationSnapshot
from edge.jpki.trust import TrustStore
from edge.reader import ApduError, CardRemoved, LoopbackConnection

from .fakes import NotACard, RecordingCard, TamperingCard, channel_for, my_number_apdus
from .pki import SIGN_POLICY_OID, make_auth, make_root

QUIRKS = [
    Quirks(),
    Quirks(read_chunk=100),
    Quirks(read_chunk=1),
    Quirks(le_correction_at_eof=True),
    Quirks(chain_61xx=64),
    Quirks(read_chunk=200, chain_61xx=100, le_correction_at_eof=True),
]


def _read(card: object, **opts: object) -> CardReadResult:
    return read_card(channel_for(card), ReadOptions(**opts))  # type: ignore[arg-type]


@pytest.mark.parametrize("quirks", QUIRKS, ids=repr)
def test_full_read_under_every_quirk(
    card_image: CardImage, test_store: TrustStore, quirks: Quirks
) -> None:
    rec = RecordingCard(VirtualCard(copy.deepcopy(card_image), quirks=quirks))
    r = _read(rec, trust=test_store, pin="1234", collation_b=card_image.collation_b)
    assert r.token_type is TokenType.CARD
    assert r.certificate.der == card_image.auth_certificate_der
    assert r.verdict is not None
    assert r.verdict.trusted
    assert r.attributes is not None
    h = card_image.holder
    assert (r.attributes.name, r.attributes.address, r.attributes.birth_date, r.attributes.sex) == (
        h.name,
        h.address,
        h.birth_date,
        h.sex,
    )
    assert r.attributes_integrity
    assert r.attributes_check.status is CheckStatus.VERIFIED
    assert r.certificate_check.status is CertificateStatus.TRUSTED
    assert r.pin_proof.verified
    assert r.card_presence.verified
    assert r.complete
    assert not r.tampered
    assert r.first_error() is None
    assert [p.kind for p in r.proofs] == ["auth_key", "card_presence"]
    assert r.apdus == len(rec.sent)
    assert my_number_apdus(rec.sent) == []


def test_certificate_read_uses_minimum_apdus(card_image: CardImage, test_store: TrustStore) -> None:
    rec = RecordingCard(VirtualCard(card_image))
    r = _read(rec, trust=test_store)
    n = len(card_image.auth_certificate_der)
    # SELECT AP, SELECT 0006, READ label, SELECT 000A, one READ per 256 bytes.
    assert r.apdus == 4 + -(-n // 256)
    assert [a.hex().upper()[:8] for a in rec.sent[:4]] == [
        "00A4040C",
        "00A4020C",
        "00B00000",
        "00A4020C",
    ]
    d = r.to_dict()
    assert d["apdus"] == r.apdus
    assert d["attributes"] == {
        "status": "not_requested",
        "verified": False,
        "error": None,
        "values": None,
    }
    assert d["pin_proof"]["status"] == "not_requested"  # type: ignore[index]
    assert d["card_presence"]["status"] == "not_requested"  # type: ignore[index]
    assert d["certificate"]["status"] == "trusted"  # type: ignore[index]
    assert d["proof_of_possession"] == []


def test_attributes_with_pin_and_no_my_number(test_ca: TestCA, test_store: TrustStore) -> None:
    image = test_ca.issue_card(pin="4321", text_pin="4321")
    rec = RecordingCard(VirtualCard(image))
    r = _read(rec, trust=test_store, pin="4321", attributes_with_pin=True)
    assert r.attributes is not None
    assert r.attributes_integrity
    assert my_number_apdus(rec.sent) == []
    assert any(a.hex().upper() == "00A4020C020011" for a in rec.sent)


def test_my_number_detector_detects() -> None:
    sent = [bytes.fromhex("00A4040C0AD3921000310001010408"), bytes.fromhex("00A4020C020001")]
    assert my_number_apdus(sent)


@pytest.mark.parametrize("profile", ["android", "iphone"])
def test_phone_tokens(test_ca: TestCA, test_store: TrustStore, profile: str) -> None:
    image = test_ca.issue_card(profile=profile)
    r = _read(VirtualCard(image), trust=test_store, pin="1234")
    assert r.token_type.value == profile
    assert r.verdict is not None
    assert r.verdict.trusted


def test_android_without_pin(test_ca: TestCA, test_store: TrustStore) -> None:
    rec = RecordingCard(VirtualCard(test_ca.issue_card(profile="android")))
    with pytest.raises(PinRequired) as info:
        _read(rec, trust=test_store)
    assert info.value.code == "pin_required"
    assert "暗証番号" in info.value.message_ja
    assert not any(a[1] == 0x20 for a in rec.sent)  # no PIN was tried


def test_not_a_my_number_card(test_store: TrustStore) -> None:
    with pytest.raises(NotMyNumberCard):
        _read(NotACard(), trust=test_store)


def test_removed_mid_read_then_next_tap_works(
    card_image: CardImage, test_store: TrustStore
) -> None:
    card = VirtualCard(copy.deepcopy(card_image), quirks=Quirks(remove_after_apdus=5))
    with pytest.raises(CardRemoved) as info:
        _read(card, trust=test_store)
    assert info.value.code == "card_removed"
    card.insert()  # the next tap
    r = read_card(channel_for(card), ReadOptions(trust=test_store))
    assert r.certificate.der == card_image.auth_certificate_der


def test_truncated_certificate_on_card(card_image: CardImage, test_store: TrustStore) -> None:
    image = copy.deepcopy(card_image)
    image.auth_certificate_der = image.auth_certificate_der[:-50]
    with pytest.raises(MalformedCertificate):
        _read(VirtualCard(image), trust=test_store)


def test_unexpected_status_word(card_image: CardImage, test_store: TrustStore) -> None:
    def tamper(cmd: bytes, resp: bytes) -> bytes:
        return bytes.fromhex("6F00") if cmd[:2] == b"\x00\xb0" and cmd[2:4] == b"\x01\x00" else resp

    with pytest.raises(ApduError) as info:
        _read(TamperingCard(VirtualCard(card_image), tamper), trust=test_store)
    assert info.value.sw == 0x6F00
    assert info.value.code == "unexpected_status"


def _pin_error(r: CardReadResult) -> object:
    assert r.pin_proof.status is CheckStatus.FAILED
    assert r.certificate_check.trusted  # the certificate stays verified
    assert r.proof("auth_key") is None
    return r.pin_proof.error


def test_pin_tries_and_blocking(fresh_image: CardImage, test_store: TrustStore) -> None:
    card = VirtualCard(fresh_image)
    err = _pin_error(_read(card, trust=test_store, pin="9999"))
    assert isinstance(err, WrongPin)
    assert err.tries_left == 2
    err = _pin_error(_read(card, trust=test_store, pin="9999"))
    assert isinstance(err, WrongPin)
    assert err.tries_left == 1
    # One try left: refused without confirmation, nothing spent.
    assert isinstance(
        _pin_error(_read(card, trust=test_store, pin="1234")), LastTryNeedsConfirmation
    )
    assert fresh_image.tries["auth_pin"] == 1
    err = _pin_error(_read(card, trust=test_store, pin="0000", allow_last_try=True))
    assert isinstance(err, PinBlocked)
    err = _pin_error(_read(card, trust=test_store, pin="1234", allow_last_try=True))
    assert isinstance(err, PinBlocked)


def test_wrong_pin_is_not_spent_on_the_text_ap(
    fresh_image: CardImage, test_store: TrustStore
) -> None:
    r = _read(VirtualCard(fresh_image), trust=test_store, pin="9999", attributes_with_pin=True)
    assert isinstance(r.pin_proof.error, WrongPin)
    assert r.attributes_check.status is CheckStatus.FAILED
    assert isinstance(r.attributes_check.error, PinNotTried)
    assert fresh_image.tries["text_pin"] == 3
    assert r.attributes is None


def test_correct_last_try_resets(fresh_image: CardImage, test_store: TrustStore) -> None:
    fresh_image.tries["auth_pin"] = 1
    r = _read(VirtualCard(fresh_image), trust=test_store, pin="1234", allow_last_try=True)
    assert r.proofs[0].kind == "auth_key"


def test_wrong_collation_b(fresh_image: CardImage, test_store: TrustStore) -> None:
    good = fresh_image.collation_b
    wrong = good[:-4] + ("0000" if good[-4:] != "0000" else "1111")
    r = _read(VirtualCard(fresh_image), trust=test_store, collation_b=wrong)
    assert r.attributes_check.status is CheckStatus.FAILED
    assert isinstance(r.attributes_check.error, WrongCollationNumber)  # a WrongPin too
    assert isinstance(r.attributes_check.error, WrongPin)
    assert r.attributes_check.error.tries_left == 9
    assert r.attributes_check.error.message_ja == "照合番号Bが違います。残り9回です。"
    assert r.card_presence.status is CheckStatus.FAILED
    assert r.attributes is None
    assert r.certificate_check.trusted
    assert r.to_dict()["attributes"]["error"]["tries_left"] == 9  # type: ignore[index]


@pytest.mark.parametrize(
    "digits",
    ["", "123", "9913321234ABCD", "991332202612345", "991301199912345"[:14], "99023020261234"],
)
def test_collation_b_checked_before_sending(
    card_image: CardImage, test_store: TrustStore, digits: str
) -> None:
    rec = RecordingCard(VirtualCard(card_image))
    with pytest.raises(InvalidCollationNumber):
        _read(rec, trust=test_store, collation_b=digits)
    assert rec.sent == []  # refused before the card was touched


def _untrusted(r: CardReadResult, kind: type) -> None:
    assert r.certificate_check.status is CertificateStatus.UNTRUSTED
    assert isinstance(r.certificate_check.error, kind)
    assert not r.certificate_check.trusted
    assert r.verdict is None
    assert r.first_error() is r.certificate_check.error
    d = r.to_dict()["certificate"]
    assert d["status"] == "untrusted"
    assert d["trusted"] is False
    assert d["error"]["code"] == r.certificate_check.error.code  # type: ignore[index,union-attr]


def test_validity_and_revocation(card_image: CardImage, test_store: TrustStore) -> None:
    cert = card_image.auth_certificate
    r = _read(
        VirtualCard(card_image),
        trust=test_store,
        now=cert.not_valid_after_utc + timedelta(seconds=1),
    )
    _untrusted(r, Expired)
    r = _read(
        VirtualCard(card_image),
        trust=test_store,
        now=cert.not_valid_before_utc - timedelta(seconds=1),
    )
    _untrusted(r, NotYetValid)
    snap = RevocationSnapshot.from_serials([cert.serial_number])
    _untrusted(_read(VirtualCard(card_image), trust=test_store, revocation=snap), Revoked)


def test_wrong_root(card_image: CardImage, key_pool: KeyPool) -> None:
    other = TestCA.create(key_factory=KeyPool(1))
    store = TrustStore.from_certificates(other.roots, allow_test_roots=True)
    r = _read(VirtualCard(card_image), trust=store)
    assert r.certificate_check.status is CertificateStatus.NOT_VERIFIED_ON_DEVICE
    assert r.certificate_check.platform_checkable
    assert isinstance(r.certificate_check.error, UntrustedIssuer)
    assert not r.certificate_check.trusted
    assert r.verdict is None


def test_wrong_policy(card_image: CardImage, key_pool: KeyPool) -> None:
    root_key = key_pool()
    image = copy.deepcopy(card_image)
    cert = make_auth(
        root_key,
        image.auth_key,
        policy=SIGN_POLICY_OID,
        not_before=datetime.now(UTC) - timedelta(days=1),
        not_after=datetime.now(UTC) + timedelta(days=1),
    )
    image.auth_certificate_der = cert.public_bytes(serialization.Encoding.DER)
    store = TrustStore.from_certificates([make_root(root_key)], allow_test_roots=True)
    _untrusted(_read(VirtualCard(image), trust=store), WrongPolicy)


def test_tampered_attributes(card_image: CardImage, test_store: TrustStore) -> None:
    state = {"ef": ""}

    def tamper(cmd: bytes, resp: bytes) -> bytes:
        if cmd[:4] == bytes.fromhex("00A4020C"):
            state["ef"] = cmd[5:7].hex()
        if (
            state["ef"] == "0002"
            and cmd[1] == 0xB0
            and resp.endswith(b"\xdf\x25\x01" + card_image.holder.sex.encode() + b"\x90\x00")
        ):
            other = b"2" if card_image.holder.sex != "2" else b"1"
            return resp[:-3] + other + resp[-2:]
        return resp

    r = _read(
        TamperingCard(VirtualCard(card_image), tamper),
        trust=test_store,
        collation_b=card_image.collation_b,
    )
    assert r.attributes_check.status is CheckStatus.TAMPERED
    assert isinstance(r.attributes_check.error, IntegrityError)
    assert r.attributes is None  # refused: never shown
    assert r.tampered
    assert not r.attributes_integrity
    assert r.certificate_check.trusted
    d = r.to_dict()
    assert d["attributes"]["status"] == "tampered"  # type: ignore[index]
    assert d["attributes"]["values"] is None  # type: ignore[index]
    assert card_image.holder.name not in repr(d)


def test_bad_auth_signature(card_image: CardImage, test_store: TrustStore) -> None:
    def zero_signature(cmd: bytes, resp: bytes) -> bytes:
        # What OpenSC 0.23 does with 61 00: 256 zero bytes as a "signature".
        return bytes(256) + b"\x90\x00" if cmd[:2] == b"\x80\x2a" else resp

    r = _read(TamperingCard(VirtualCard(card_image), zero_signature), trust=test_store, pin="1234")
    assert r.pin_proof.status is CheckStatus.FAILED
    assert isinstance(r.pin_proof.error, BadSignature)
    assert r.proofs == ()


def test_no_trust_store_gives_no_verdict(card_image: CardImage) -> None:
    r = read_card(
        channel_for(VirtualCard(card_image)), ReadOptions(collation_b=card_image.collation_b)
    )
    assert r.verdict is None
    assert r.certificate_check.status is CertificateStatus.NOT_CHECKED
    # Read, but nothing to check the chain against: shown, never as verified.
    assert r.attributes is not None
    assert r.attributes_check.status is CheckStatus.NOT_VERIFIED
    assert r.card_presence.status is CheckStatus.NOT_VERIFIED
    assert not r.attributes_integrity
    assert not r.complete


def test_loopback_connection_is_the_only_transport_needed(card_image: CardImage) -> None:
    with LoopbackConnection(VirtualCard(card_image)) as conn:
        assert conn.atr


def test_photo_behind_collation_b(card_image: CardImage, test_store: TrustStore) -> None:
    rec = RecordingCard(VirtualCard(card_image))
    r = _read(rec, trust=test_store, collation_b=card_image.collation_b, read_photo=True)
    assert r.face is not None
    assert r.face.photo == card_image.photo
    assert r.face.photo_is_jpeg2000
    photo = r.to_dict()["photo"]
    assert isinstance(photo, dict)
    assert photo["bytes"] == len(card_image.photo)
    assert my_number_apdus(rec.sent) == []
    assert any(a.hex().upper() == "00A4020C020012" for a in rec.sent)
    assert "photo" not in repr(r.face)


def test_progress_steps(card_image: CardImage, test_store: TrustStore) -> None:
    steps: list[str] = []
    _read(
        VirtualCard(card_image),
        trust=test_store,
        pin="1234",
        collation_b=card_image.collation_b,
        read_photo=True,
        on_step=steps.append,
    )
    assert steps == ["token", "certificate", "signature", "attributes", "photo"]


def test_cancel_between_apdus(card_image: CardImage, test_store: TrustStore) -> None:
    import threading

    from edge.reader import ApduChannel, Cancelled

    cancel = threading.Event()
    ch = ApduChannel(LoopbackConnection(VirtualCard(card_image)), cancel=cancel)
    with pytest.raises(Cancelled):
        read_card(ch, ReadOptions(trust=test_store, on_step=lambda s: cancel.set()))


def test_removed_in_the_text_ap_keeps_the_certificate(
    card_image: CardImage, test_store: TrustStore
) -> None:
    n_cert = 4 + -(-len(card_image.auth_certificate_der) // 256)
    card = VirtualCard(copy.deepcopy(card_image), quirks=Quirks(remove_after_apdus=n_cert + 2))
    r = _read(card, trust=test_store, collation_b=card_image.collation_b)
    assert r.certificate_check.trusted
    assert r.certificate.der == card_image.auth_certificate_der
    assert r.attributes_check.status is CheckStatus.FAILED
    assert isinstance(r.attributes_check.error, CardRemoved)
    assert r.attributes is None
    assert r.first_error() is r.attributes_check.error


def test_malformed_pin_refused_before_the_card(card_image: CardImage) -> None:
    from edge.jpki import InvalidPinFormat

    with pytest.raises(InvalidPinFormat):
        ReadOptions(pin="12a4")
