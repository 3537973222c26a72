"""Envelope v2 (MLKEM768-X25519 hybrid HPKE): round trips beside v1, the device's
version rule for mixed recipients, every byte bound, wrong key kinds refused."""

from __future__ import annotations

import json

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
    SealedCase,
    UnsupportedVersion,
    WrongKeyKind,
)
from sync.envelope import FORMATS, MAX_RECIPIENTS, V1, V2, RecipientKey, assemble, encode_header
from sync.seal import (
    OpeningKeys,
    SealingKeys,
    envelope_version_for,
    open_case,
    seal_case,
)
from sync.xwing import PUBLIC_KEY_LEN, XWingPrivateKey, XWingPublicKey

DEVICE = Ed25519PrivateKey.generate()


class Hospital:
    def __init__(self, *, hybrid: bool = True) -> None:
        self.x25519 = X25519PrivateKey.generate()
        self.xwing = XWingPrivateKey.generate() if hybrid else None

    @property
    def sealing(self) -> SealingKeys:
        return SealingKeys(
            x25519=self.x25519.public_key(),
            xwing=None if self.xwing is None else self.xwing.public_key(),
        )

    @property
    def opening(self) -> OpeningKeys:
        return OpeningKeys(x25519=self.x25519, xwing=self.xwing)


HOSPITALS = {"h0": Hospital(), "h1": Hospital(), "old": Hospital(hybrid=False)}
PAYLOAD = json.dumps({"resourceType": "Bundle", "name": "山田太郎"}, ensure_ascii=False).encode()


def lookup(device_id: str) -> Ed25519PublicKey | None:
    return DEVICE.public_key() if device_id == "dev-1" else None


def seal(ids: tuple[str, ...], *, version: int | None = None, payload: bytes = PAYLOAD) -> bytes:
    return seal_case(
        payload,
        case_id="case-1",
        device_id="dev-1",
        device_key=DEVICE,
        recipients={h: HOSPITALS[h].sealing for h in ids},
        version=version,
    )


def open_at(data: bytes, hospital: str = "h0") -> bytes:
    return open_case(
        data,
        hospital_id=hospital,
        hospital_key=HOSPITALS[hospital].opening,
        device_key_for=lookup,
    ).payload


SMALL_V2 = seal(("h0",), payload=b"{}")


def test_v2_and_v1_round_trip_at_every_recipient() -> None:
    v2 = seal(("h0", "h1"))
    v1 = seal(("h0", "h1"), version=V1)
    assert SealedCase.from_bytes(v2).version == V2
    assert SealedCase.from_bytes(v1).version == V1
    for h in ("h0", "h1"):
        assert open_at(v2, h) == PAYLOAD
        assert open_at(v1, h) == PAYLOAD
    # One hybrid recipient costs its 1,168-byte wrapped key (base64url in the header).
    parsed = SealedCase.from_bytes(v2)
    assert {len(r.wrapped_key) for r in parsed.recipients} == {FORMATS[V2].wrapped_key_len}
    assert b'"v":2' in parsed.header
    assert "山田".encode() not in v2


def test_mixed_recipients_seal_v1_and_every_hybrid_fleet_v2() -> None:
    """The device's rule: v2 only when every recipient has a hybrid key."""
    assert envelope_version_for({h: HOSPITALS[h].sealing for h in ("h0", "h1")}) == V2
    assert envelope_version_for({h: HOSPITALS[h].sealing for h in ("h0", "old")}) == V1
    assert envelope_version_for({"h0": HOSPITALS["h0"].x25519.public_key()}) == V1
    assert envelope_version_for({"h0": HOSPITALS["h0"].xwing.public_key()}) == V2  # type: ignore[union-attr]
    assert envelope_version_for({}) == V1
    mixed = seal(("h0", "old"))
    assert SealedCase.from_bytes(mixed).version == V1
    assert open_at(mixed, "h0") == PAYLOAD
    assert open_at(mixed, "old") == PAYLOAD


def test_wrong_key_kinds_are_typed_errors() -> None:
    # Forcing v2 for a recipient without a hybrid key, v1 for one without X25519.
    with pytest.raises(WrongKeyKind):
        seal(("h0", "old"), version=V2)
    only_xwing = HOSPITALS["h0"].xwing
    assert only_xwing is not None
    with pytest.raises(WrongKeyKind):
        seal_case(
            PAYLOAD,
            case_id="c",
            device_id="dev-1",
            device_key=DEVICE,
            recipients={"h0": only_xwing.public_key()},
            version=V1,
        )
    with pytest.raises(WrongKeyKind):
        seal_case(
            PAYLOAD,
            case_id="c",
            device_id="dev-1",
            device_key=DEVICE,
            recipients={"h0": DEVICE.public_key()},  # type: ignore[dict-item]
        )
    with pytest.raises(UnsupportedVersion):
        seal(("h0",), version=3)
    v2, v1 = seal(("h0",)), seal(("h0",), version=V1)
    for data, key in (
        (v2, HOSPITALS["h0"].x25519),  # a hospital without its hybrid key: v2 is not for it
        (v2, OpeningKeys(x25519=HOSPITALS["h0"].x25519)),
        (v1, only_xwing),  # a hybrid-only hospital cannot open v1
        (v1, OpeningKeys(xwing=only_xwing)),
        (v2, DEVICE),  # not a hospital key at all
    ):
        with pytest.raises(WrongKeyKind) as err:
            open_case(data, hospital_id="h0", hospital_key=key, device_key_for=lookup)  # type: ignore[arg-type]
        assert err.value.code == "envelope_wrong_key_kind"
    # The one key of the right kind alone is enough.
    assert open_case(v2, hospital_id="h0", hospital_key=only_xwing, device_key_for=lookup)
    assert open_case(
        v1, hospital_id="h0", hospital_key=HOSPITALS["h0"].x25519, device_key_for=lookup
    )
    # Another hospital's hybrid key does not decrypt.
    with pytest.raises(DecryptionFailed):
        open_case(v2, hospital_id="h0", hospital_key=HOSPITALS["h1"].opening, device_key_for=lookup)


def test_every_byte_of_a_small_v2_envelope_is_bound() -> None:
    """Flip each byte in turn: refused, first by the device signature."""
    assert len(SMALL_V2) < 2200
    for pos in range(len(SMALL_V2)):
        tampered = bytearray(SMALL_V2)
        tampered[pos] ^= 0x01
        with pytest.raises(EnvelopeError):
            open_at(bytes(tampered))


def test_every_byte_under_a_resigned_v2_envelope_is_bound() -> None:
    """With the device key itself abused (re-signed after the change), the header in
    the payload's AAD, the ids in HPKE info and the AEAD tags still refuse every byte."""
    parsed = SealedCase.from_bytes(SMALL_V2)
    signed = parsed.signed_bytes
    for pos in range(len(signed)):
        tampered = bytearray(signed)
        tampered[pos] ^= 0x01
        resigned = bytes(tampered) + DEVICE.sign(bytes(tampered))
        with pytest.raises(EnvelopeError):
            open_at(resigned)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_of_a_v2_envelope_is_detected(data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(SMALL_V2) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = bytearray(SMALL_V2)
    tampered[pos] ^= 1 << bit
    with pytest.raises(EnvelopeError):
        open_at(bytes(tampered))


def test_the_version_byte_decides_never_a_guess() -> None:
    v2, v1 = seal(("h0",)), seal(("h0",), version=V1)
    for data, other in ((v2, b"\x01"), (v1, b"\x02")):
        relabelled = data[:4] + other + data[5:]
        with pytest.raises((UnsupportedVersion, MalformedEnvelope)):
            SealedCase.from_bytes(relabelled)
        resigned_body = relabelled[:-64]
        with pytest.raises((UnsupportedVersion, MalformedEnvelope)):
            open_at(resigned_body + DEVICE.sign(resigned_body))
    # A v1-sized wrapped key cannot stand in a v2 header, nor the other way round.
    with pytest.raises(MalformedEnvelope):
        encode_header(
            case_id="c",
            device_id="dev-1",
            created_at=0,
            nonce=bytes(12),
            recipients=[RecipientKey("h0", bytes(FORMATS[V1].wrapped_key_len))],
            version=V2,
        )
    with pytest.raises(UnsupportedVersion):
        SealedCase.from_bytes(v2[:4] + b"\x03" + v2[5:])


def test_info_names_the_version() -> None:
    """``info`` names the version, so a wrapped key never opens under the other one."""
    from sync.envelope import hpke_info

    assert hpke_info("c", "d", "h", version=V2).startswith(b"kyukyu-case-v2\x00")
    assert hpke_info("c", "d", "h", version=V1).startswith(b"kyukyu-case-v1\x00")


def test_sixty_four_hybrid_recipients_fit() -> None:
    many = {f"hospital-{i:03d}": HOSPITALS["h1"].sealing for i in range(MAX_RECIPIENTS)}
    many["h0"] = HOSPITALS["h0"].sealing
    many.pop("hospital-000")
    data = seal_case(PAYLOAD, case_id="c", device_id="dev-1", device_key=DEVICE, recipients=many)
    parsed = SealedCase.from_bytes(data)
    assert parsed.version == V2
    assert len(parsed.recipients) == MAX_RECIPIENTS
    assert len(parsed.header) <= FORMATS[V2].max_header
    assert open_at(data, "h0") == PAYLOAD


def test_resigned_by_another_device_and_swapped_signature() -> None:
    v2 = seal(("h0",))
    parsed = SealedCase.from_bytes(v2)
    forged = assemble(parsed.header, parsed.payload, Ed25519PrivateKey.generate(), version=V2)
    with pytest.raises(BadSignature):
        open_at(forged)
    other = seal(("h0",))
    with pytest.raises(BadSignature):
        open_at(v2[:-64] + other[-64:])


def test_xwing_keys_round_trip_and_refuse_bad_bytes() -> None:
    key = XWingPrivateKey.generate()
    again = XWingPrivateKey.from_seed(key.seed_bytes())
    assert again.public_key() == key.public_key()
    raw = key.public_key().to_bytes()
    assert len(raw) == PUBLIC_KEY_LEN
    assert XWingPublicKey.from_bytes(raw) == key.public_key()
    assert "seed" not in repr(key)
    assert key.seed_bytes().hex() not in repr(key)
    for bad in (raw[:-1], raw + b"\x00", b""):
        with pytest.raises(ValueError):
            XWingPublicKey.from_bytes(bad)
    for bad_seed in (bytes(31), bytes(33)):
        with pytest.raises(ValueError):
            XWingPrivateKey.from_seed(bad_seed)
