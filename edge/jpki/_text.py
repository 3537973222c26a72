"""The text AP (券面事項入力補助AP): four attributes, their integrity record, card presence.

There is deliberately no way here to select EF 0001 (the My Number) or to
verify 照合番号A (EF 0014, which is the My Number itself): the project never
reads, stores, logs or sends the 12-digit number.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date

from edge.reader import ApduChannel, CommandApdu, SecurityStatusNotSatisfied

from ._base import ApplicationSession, check_pin_format
from ._constants import (
    AID_TEXT,
    CLA_PROPRIETARY,
    INS_COMPUTE_SIGNATURE,
    TextFile,
)
from ._cvc import (
    CardKeyCertificate,
    CardVerifiableCertificate,
    check_pkcs1_sha256,
    parse_card_key,
    parse_cvc,
)
from ._errors import (
    BadSignature,
    IntegrityError,
    InvalidCollationNumber,
    InvalidPinFormat,
    MalformedCertificate,
    MalformedData,
    PinRequired,
)
from ._jpki import digest_info_sha256
from ._tlv import parse_tlv, parse_tlvs, split_tlvs
from .era import from_era_yymmdd

__all__ = [
    "Attributes",
    "IntegrityRecord",
    "TextSession",
    "attributes_hash_input",
    "check_attributes_hash",
    "check_collation_b",
    "check_integrity_signature",
    "parse_attributes",
    "parse_integrity",
]

_TAG_ATTRIBUTES = 0xFF20
_TAG_OFFSETS = 0xDF21
_TAG_CVC, _TAG_CARD_KEY = 0x7F21, 0xFF50
_TAG_NAME, _TAG_ADDRESS, _TAG_BIRTH, _TAG_SEX = 0xDF22, 0xDF23, 0xDF24, 0xDF25
_TAG_INTEGRITY = 0xFF30
_TAG_H_NUMBER, _TAG_H_ATTRIBUTES, _TAG_SIGNATURE = 0xDF31, 0xDF32, 0xDF33
_SEXES = frozenset({"1", "2", "9"})
# P2 00: the application's own key (no SELECT of a key EF).
_SIGN_P2_APPLICATION_KEY = 0x00

_COLLATION_B_RE = re.compile(r"[0-9]{14}")


@dataclass(frozen=True)
class Attributes:
    """The four attributes printed on the card (基本4情報). Never log them."""

    name: str = field(repr=False)
    address: str = field(repr=False)
    birth_date: date = field(repr=False)
    sex: str = field(repr=False)  # "1" male, "2" female, "9" not applicable

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex,
        }


@dataclass(frozen=True)
class IntegrityRecord:
    """EF 0003: the hashes of EF 0001 and of the attribute objects, and the issuer's signature.

    ``signed_data`` is the DF31 and DF32 objects as stored (tags and lengths included):
    what DF33 signs.
    """

    my_number_hash: bytes = field(repr=False)
    attributes_hash: bytes
    signature: bytes = field(repr=False)
    signed_data: bytes = field(repr=False)


def check_collation_b(digits: str) -> bytes:
    """照合番号B as printed on the card face: 14 digits.

    The birth date in the **Japanese era** (YYMMDD, 1980-02-17 = 昭和55年2月17日 ->
    ``550217``; ``edge.jpki.era.collation_b_birth_part`` converts a Western date),
    the card's expiry year (4 digits) and the security code (4 digits). Returns the
    ASCII bytes, or raises ``InvalidCollationNumber`` before anything is sent.
    """
    if not isinstance(digits, str) or not _COLLATION_B_RE.fullmatch(digits):
        raise InvalidCollationNumber()
    if not from_era_yymmdd(digits[0:6]):
        raise InvalidCollationNumber("birth date part is not a date in the Japanese era")
    expiry_year = int(digits[6:10])
    if not 2015 <= expiry_year <= 2099:
        raise InvalidCollationNumber("expiry year out of range")
    return digits.encode("ascii")


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedData(f"{what} is not UTF-8") from exc


def parse_attributes(raw: bytes) -> Attributes:
    """Parse EF 0002 (``FF20 {DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex}``).

    Proper BER: long-form lengths, fields found by tag (not by fixed offsets).
    Every failure is ``MalformedData``.
    """
    outer, _ = parse_tlv(raw)
    if outer.tag != _TAG_ATTRIBUTES:
        raise MalformedData(f"attributes file starts with tag {outer.tag:X}")
    fields: dict[int, bytes] = {}
    for t in parse_tlvs(outer.value):
        fields.setdefault(t.tag, t.value)
    missing = [f"{t:X}" for t in (_TAG_NAME, _TAG_ADDRESS, _TAG_BIRTH, _TAG_SEX) if t not in fields]
    if missing:
        raise MalformedData(f"attributes without {', '.join(missing)}")
    birth = _text(fields[_TAG_BIRTH], "birth date")
    if not re.fullmatch(r"[0-9]{8}", birth):
        raise MalformedData("birth date is not YYYYMMDD")
    try:
        birth_date = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError as exc:
        raise MalformedData("birth date is not a date") from exc
    sex = _text(fields[_TAG_SEX], "sex")
    if sex not in _SEXES:
        raise MalformedData("sex code is not 1, 2 or 9")
    return Attributes(
        name=_text(fields[_TAG_NAME], "name"),
        address=_text(fields[_TAG_ADDRESS], "address"),
        birth_date=birth_date,
        sex=sex,
    )


def parse_integrity(raw: bytes) -> IntegrityRecord:
    """Parse EF 0003 (``FF30 82 014B { DF31 20 h1, DF32 20 h2, DF33 82 0100 sig }``).

    Every failure is ``MalformedData``.
    """
    outer, _ = parse_tlv(raw)
    if outer.tag != _TAG_INTEGRITY:
        raise MalformedData(f"integrity record starts with tag {outer.tag:X}")
    objects: dict[int, tuple[bytes, bytes]] = {}
    for t, stored in split_tlvs(outer.value):
        objects.setdefault(t.tag, (t.value, stored))
    try:
        (h1, h1_obj), (h2, h2_obj) = objects[_TAG_H_NUMBER], objects[_TAG_H_ATTRIBUTES]
        sig = objects[_TAG_SIGNATURE][0]
    except KeyError as exc:
        raise MalformedData("integrity record incomplete") from exc
    if len(h1) != 32 or len(h2) != 32:
        raise MalformedData("integrity hashes are not SHA-256")
    return IntegrityRecord(h1, h2, sig, h1_obj + h2_obj)


def attributes_hash_input(raw: bytes) -> bytes:
    """What DF32 hashes: the FF20 contents without the DF21 object (DF22-DF25 as stored)."""
    outer, _ = parse_tlv(raw)
    if outer.tag != _TAG_ATTRIBUTES:
        raise MalformedData(f"attributes file starts with tag {outer.tag:X}")
    return b"".join(stored for t, stored in split_tlvs(outer.value) if t.tag != _TAG_OFFSETS)


def check_attributes_hash(raw: bytes, record: IntegrityRecord) -> None:
    """DF32 must be SHA-256 of the DF22-DF25 objects, else ``IntegrityError`` (tampered)."""
    if hashlib.sha256(attributes_hash_input(raw)).digest() != record.attributes_hash:
        raise IntegrityError("attributes hash differs from DF32")


def check_integrity_signature(record: IntegrityRecord, issuer: CardVerifiableCertificate) -> None:
    """DF33 over the DF31 and DF32 objects by the EF 0004 key, else ``IntegrityError``."""
    try:
        check_pkcs1_sha256(issuer.public_key, record.signature, record.signed_data)
    except BadSignature as exc:
        raise IntegrityError("DF33 does not verify under the EF 0004 key") from exc


class TextSession(ApplicationSession):
    """The text AP over an ``ApduChannel``: opened by the PIN or 照合番号B."""

    AID = AID_TEXT

    def __init__(self, channel: ApduChannel) -> None:
        super().__init__(channel)
        self._attributes_raw: bytes | None = None
        self._issuer: CardVerifiableCertificate | None = None
        self._card_key: CardKeyCertificate | None = None

    def select(self) -> None:
        super().select()
        self._attributes_raw = None

    def pin_attempts(self) -> int:
        """Tries left on the text AP's PIN (0 = blocked), without using one."""
        self._select_ef(TextFile.PIN)
        return self._retry_counter()

    def collation_b_attempts(self) -> int:
        """Tries left on 照合番号B (0 = blocked), without using one."""
        self._select_ef(TextFile.COLLATION_B)
        return self._retry_counter()

    def unlock_with_pin(self, pin: str, *, allow_last_try: bool = False) -> None:
        """VERIFY the text AP's 4-digit PIN (EF 0011), with the one-try-left guard."""
        secret = check_pin_format(pin, InvalidPinFormat)
        self._verify(TextFile.PIN, secret, allow_last_try=allow_last_try)

    def unlock_with_collation_b(self, digits: str, *, allow_last_try: bool = False) -> None:
        """VERIFY 照合番号B (EF 0015): 14 digits keyed from the card face, checked first."""
        secret = check_collation_b(digits)
        self._verify(TextFile.COLLATION_B, secret, allow_last_try=allow_last_try, collation_b=True)

    def read_attributes_raw(self) -> bytes:
        """EF 0002 as stored (the bytes the integrity record hashes)."""
        self._require_verified()
        try:
            raw = self._read_tlv_file(TextFile.ATTRIBUTES, expected_tag=_TAG_ATTRIBUTES)
        except SecurityStatusNotSatisfied as exc:
            raise PinRequired("attributes need the PIN or 照合番号B") from exc
        self._attributes_raw = raw
        return raw

    def read_attributes(self) -> Attributes:
        """The four attributes (name, address, birth date, sex), parsed."""
        return parse_attributes(self.read_attributes_raw())

    def read_issuer_certificate(self) -> CardVerifiableCertificate:
        """EF 0004 (free): the issuer key's card-verifiable certificate, parsed.

        Whether its CA key is pinned is the trust store's business
        (``trust.verify_text_ap_issuer``).
        """
        if self._issuer is None:
            raw = self._read_tlv_file(
                TextFile.CERTIFICATE, expected_tag=_TAG_CVC, error=MalformedCertificate
            )
            self._issuer = parse_cvc(raw)
        return self._issuer

    def read_integrity(self) -> IntegrityRecord:
        """EF 0003, parsed (needs the PIN or 照合番号B)."""
        self._require_verified()
        try:
            raw = self._read_tlv_file(TextFile.INTEGRITY, expected_tag=_TAG_INTEGRITY)
        except SecurityStatusNotSatisfied as exc:
            raise PinRequired("integrity record needs the PIN or 照合番号B") from exc
        return parse_integrity(raw)

    def read_card_key(self) -> CardKeyCertificate:
        """EF 0007 (needs the PIN or 照合番号B): the card's own key, certified by EF 0004's."""
        self._require_verified()
        if self._card_key is None:
            try:
                raw = self._read_tlv_file(
                    TextFile.CARD_KEY, expected_tag=_TAG_CARD_KEY, error=MalformedCertificate
                )
            except SecurityStatusNotSatisfied as exc:
                raise PinRequired("EF 0007 needs the PIN or 照合番号B") from exc
            self._card_key = parse_card_key(raw)
        return self._card_key

    def verify_integrity(self, attributes_raw: bytes | None = None) -> IntegrityRecord:
        """Check EF 0003 against the attributes and the EF 0004 key; ``IntegrityError`` if not.

        DF32 must equal SHA-256 of the DF22-DF25 objects; DF33 is the issuer key's
        PKCS#1 v1.5 / SHA-256 signature over the DF31 and DF32 objects. EF 0001 is
        never read. Whether EF 0004 itself chains to a pinned CA key is the trust
        store's business (``trust.verify_text_ap_issuer``).
        """
        raw = attributes_raw if attributes_raw is not None else self._attributes_raw
        if raw is None:
            raw = self.read_attributes_raw()
        record = self.read_integrity()
        check_attributes_hash(raw, record)
        check_integrity_signature(record, self.read_issuer_certificate())
        return record

    def prove_presence(self, challenge: bytes) -> bytes:
        """Have the card sign SHA-256(challenge) with its own key (``80 2A 00 00``).

        The signature is checked against EF 0007's DF51 key before it is returned
        (``BadSignature`` otherwise). That DF51 is certified by the EF 0004 key (DF52)
        and EF 0004 by a pinned CA is checked by ``verify_card_key_chain`` and the
        trust store: the whole chain is CA key -> EF 0004 -> EF 0007 -> the signature.
        """
        self._ensure_selected()
        card_key = self.read_card_key()
        cmd = CommandApdu(
            CLA_PROPRIETARY,
            INS_COMPUTE_SIGNATURE,
            0x00,
            _SIGN_P2_APPLICATION_KEY,
            digest_info_sha256(challenge),
            le=256,
        )
        signature = self.channel.send(cmd).data
        check_pkcs1_sha256(card_key.public_key, signature, challenge)
        return signature

    def verify_card_key_chain(self) -> CardKeyCertificate:
        """DF52 of EF 0007 under the EF 0004 key, else ``IntegrityError``."""
        card_key = self.read_card_key()
        try:
            card_key.verify_under(self.read_issuer_certificate().public_key)
        except BadSignature as exc:
            raise IntegrityError("EF 0007 is not certified by the EF 0004 key (DF52)") from exc
        return card_key
