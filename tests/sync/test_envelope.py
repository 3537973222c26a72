"""Sealing and opening: round trip, metadata without decrypting, tampering, replay."""

from __future__ import annotations

import contextlib
import json
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import (
    BadSignature,
    DecryptionFailed,
    EnvelopeError,
    MalformedEnvelope,
    NotARecipient,
    SealedCase,
    UnknownDevice,
    UnsupportedVersion,
    open_case,
    seal_case,
)
from sync.envelope import MAGIC, SIGNATURE_LEN, RecipientKey, aad_for, assemble, encode_header

DEVICE = Ed25519PrivateKey.generate()
OTHER_DEVICE = Ed25519PrivateKey.generate()
HOSPITALS = {f"h{i}": X25519PrivateKey.generate() for i in range(3)}
PAYLOAD = json.dumps({"resourceType": "Bundle", "type": "document", "x": "山田太郎"}).encode()


def lookup(device_id: str) -> Ed25519PublicKey | None:
    return DEVICE.public_key() if device_id == "dev-1" else None


def sealed(recipients: tuple[str, ...] = ("h0", "h1"), case_id: str = "case-1") -> bytes:
    return seal_case(
        PAYLOAD,
        case_id=case_id,
        device_id="dev-1",
        device_key=DEVICE,
        recipients={r: HOSPITALS[r].public_key() for r in recipients},
    )


SEALED = sealed()


def open_at(data: bytes, hospital: str = "h0") -> bytes:
    return open_case(
        data, hospital_id=hospital, hospital_key=HOSPITALS[hospital], device_key_for=lookup
    ).payload


def test_round_trip_for_every_recipient() -> None:
    for h in ("h0", "h1"):
        opened = open_case(SEALED, hospital_id=h, hospital_key=HOSPITALS[h], device_key_for=lookup)
        assert opened.payload == PAYLOAD
        assert opened.case_id == "case-1"
        assert opened.bundle()["x"] == "山田太郎"


def test_metadata_without_decrypting() -> None:
    s = SealedCase.from_bytes(SEALED)
    assert s.case_id == "case-1"
    assert s.device_id == "dev-1"
    assert s.recipient_ids == ("h0", "h1")
    assert s.to_bytes() == SEALED
    s.verify_signature(DEVICE.public_key())
    with pytest.raises(BadSignature):
        s.verify_signature(OTHER_DEVICE.public_key())


def test_payload_is_not_in_the_clear() -> None:
    assert "山田".encode() not in SEALED
    assert b"Bundle" not in SEALED


def test_not_a_recipient_is_refused() -> None:
    with pytest.raises(NotARecipient):
        open_at(SEALED, "h2")


def test_unknown_device() -> None:
    with pytest.raises(UnknownDevice):
        open_case(
            SEALED, hospital_id="h0", hospital_key=HOSPITALS["h0"], device_key_for=lambda _: None
        )


def test_wrong_hospital_key_fails_to_decrypt() -> None:
    with pytest.raises(DecryptionFailed):
        open_case(SEALED, hospital_id="h0", hospital_key=HOSPITALS["h1"], device_key_for=lookup)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_is_detected(data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(SEALED) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = bytearray(SEALED)
    tampered[pos] ^= 1 << bit
    with pytest.raises(EnvelopeError):
        open_at(bytes(tampered))


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(SEALED) - 1), extra=st.binary(max_size=4))
def test_truncation_and_trailing_bytes(cut: int, extra: bytes) -> None:
    candidate = SEALED[:cut] + extra
    if candidate != SEALED:
        with pytest.raises(EnvelopeError):
            open_at(candidate)
    if extra:
        with pytest.raises(MalformedEnvelope):
            SealedCase.from_bytes(SEALED + extra)


@given(st.binary(max_size=300))
def test_parser_never_crashes(data: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        SealedCase.from_bytes(MAGIC + b"\x01" + data)


def test_swapped_signature_is_detected() -> None:
    other = sealed()
    swapped = SEALED[:-SIGNATURE_LEN] + other[-SIGNATURE_LEN:]
    with pytest.raises(BadSignature):
        open_at(swapped)


def test_resigned_by_another_device_is_detected() -> None:
    s = SealedCase.from_bytes(SEALED)
    forged = assemble(s.header, s.payload, OTHER_DEVICE)
    with pytest.raises(BadSignature):
        open_at(forged)


def test_replay_to_another_hospital_by_renaming_recipient() -> None:
    """Relabel h0's wrapped key as h2's and re-sign (a compromised device key): HPKE info
    binds the recipient id, so h2 still cannot open it."""
    s = SealedCase.from_bytes(SEALED)
    header = s.header.replace(b'"id":"h0"', b'"id":"h2"')
    # unsigned relabel -> signature fails
    unsigned = bytearray(SEALED)
    unsigned[9 : 9 + len(header)] = header
    with pytest.raises(BadSignature):
        open_at(bytes(unsigned), "h2")
    resigned = assemble(header, s.payload, DEVICE)
    with pytest.raises(DecryptionFailed):
        open_at(resigned, "h2")


def test_moving_a_wrapped_key_to_another_case_fails() -> None:
    a = SealedCase.from_bytes(SEALED)
    b = SealedCase.from_bytes(sealed(case_id="case-2"))
    header = encode_header(
        case_id="case-2",
        device_id="dev-1",
        created_at=b.created_at,
        nonce=a.nonce,
        recipients=[RecipientKey("h0", a.recipients[0].wrapped_key)],
    )
    forged = assemble(header, a.payload, DEVICE)
    with pytest.raises(DecryptionFailed):
        open_at(forged)


def test_case_id_must_match_delivery() -> None:
    with pytest.raises(MalformedEnvelope):
        open_case(
            SEALED,
            hospital_id="h0",
            hospital_key=HOSPITALS["h0"],
            device_key_for=lookup,
            expected_case_id="case-9",
        )


def test_unknown_version_and_noncanonical_header() -> None:
    with pytest.raises(UnsupportedVersion):
        SealedCase.from_bytes(MAGIC + b"\x03" + SEALED[5:])
    s = SealedCase.from_bytes(SEALED)
    spaced = json.dumps(json.loads(s.header), indent=1).encode()
    body = aad_for(spaced) + struct.pack(">I", len(s.payload)) + s.payload
    with pytest.raises(MalformedEnvelope):
        SealedCase.from_bytes(body + DEVICE.sign(body))


def test_error_has_codes() -> None:
    err = NotARecipient()
    d = err.to_dict()
    assert d["code"] == "envelope_not_recipient"
    assert d["message_ja"]
    assert d["message_en"]


def test_json_text_round_trip_is_one_codec() -> None:
    """The device's post, the hub's event and the receiver read the same text form."""
    from sync.envelope import envelope_from_text, envelope_to_text

    parsed = SealedCase.from_bytes(SEALED)
    text = envelope_to_text(SEALED)
    assert text == parsed.to_text()
    assert envelope_from_text(text) == SEALED
    assert SealedCase.from_text(text) == parsed
    # One field, one alphabet: URL-safe, unpadded or wrapped text is refused.
    assert "+" in text or "/" in text or text.endswith("=")
    for other in (
        text.replace("+", "-").replace("/", "_"),
        text.rstrip("=") if text.endswith("=") else text + "=",
        text[:40] + "\n" + text[40:],
    ):
        with pytest.raises(MalformedEnvelope):
            SealedCase.from_text(other)
    opened = open_case(
        SealedCase.from_text(text), hospital_id="h1", hospital_key=HOSPITALS["h1"],
        device_key_for=lookup,
    )  # fmt: skip
    assert opened.payload == PAYLOAD


@pytest.mark.parametrize("bad", [None, 3, b"S0tTQw==", "not base64!", "QQ"])
def test_envelope_text_that_is_not_base64_is_malformed(bad: object) -> None:
    with pytest.raises(MalformedEnvelope):
        SealedCase.from_text(bad)


def test_the_outbox_takes_a_parsed_case_without_parsing_again(tmp_path: object) -> None:
    from pathlib import Path

    from sync import Outbox

    assert isinstance(tmp_path, Path)
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        pending = outbox.enqueue(SealedCase.from_bytes(SEALED))
        again = outbox.enqueue(SEALED)
        assert pending.case_id == again.case_id == "case-1"
    finally:
        outbox.close()
