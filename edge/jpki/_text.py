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

from cryptography import x509

from edge.reader import ApduChannel, CommandApdu, SecurityStatusNotSatisfied

from ._base import ApplicationSession, check_pin_format
from ._constants import (
    AID_TEXT,
    CLA_PROPRIETARY,
    INS_COMPUTE_SIGNATURE,
    TextFile,
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
from ._jpki import check_rsa_signature, digest_info_sha256, load_certificate
from ._tlv import parse_tlv, parse_tlvs

__all__ = ["Attributes", "IntegrityRecord", "TextSession", "check_collation_b", "parse_attributes"]

_TAG_ATTRIBUTES = 0xFF20
_TAG_NAME, _TAG_ADDRESS, _TAG_BIRTH, _TAG_SEX = 0xDF22, 0xDF23, 0xDF24, 0xDF25
_TAG_INTEGRITY = 0xFF30
_TAG_H_NUMBER, _TAG_H_ATTRIBUTES, _TAG_SIGNATURE = 0xDF31, 0xDF32, 0xDF33
_DER_SEQUENCE = 0x30
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
    """EF 0003: hashes of the My Number and attributes files, and the AP's signature."""

    my_number_hash: bytes = field(repr=False)
    attributes_hash: bytes
    signature: bytes = field(repr=False)


def check_collation_b(digits: str) -> bytes:
    """照合番号B = birth date YYMMDD + card expiry year (4) + security code (4).

    Returns the ASCII bytes, or raises ``InvalidCollationNumber`` before anything is sent.
    """
    if not isinstance(digits, str) or not _COLLATION_B_RE.fullmatch(digits):
        raise InvalidCollationNumber()
    yy, mm, dd = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    try:
        # Any century: only the calendar (month 1-12, a real day; 29 Feb in a leap year 2000+yy
        # or 1900+yy) is checked.
        date(2000 + yy, mm, dd)
    except ValueError:
        try:
            date(1900 + yy, mm, dd)
        except ValueError as exc:
            raise InvalidCollationNumber("birth date part is not a date") from exc
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
    """Parse EF 0003 (``FF30 {DF31, DF32, DF33}``)."""
    outer, _ = parse_tlv(raw)
    if outer.tag != _TAG_INTEGRITY:
        raise MalformedData(f"integrity record starts with tag {outer.tag:X}")
    fields: dict[int, bytes] = {}
    for t in parse_tlvs(outer.value):
        fields.setdefault(t.tag, t.value)
    try:
        h1, h2, sig = fields[_TAG_H_NUMBER], fields[_TAG_H_ATTRIBUTES], fields[_TAG_SIGNATURE]
    except KeyError as exc:
        raise MalformedData("integrity record incomplete") from exc
    if len(h1) != 32 or len(h2) != 32:
        raise MalformedData("integrity hashes are not SHA-256")
    return IntegrityRecord(h1, h2, sig)


class TextSession(ApplicationSession):
    """The text AP over an ``ApduChannel``: opened by the PIN or 照合番号B."""

    AID = AID_TEXT

    def __init__(self, channel: ApduChannel) -> None:
        super().__init__(channel)
        self._attributes_raw: bytes | None = None
        self._cert: x509.Certificate | None = None
        self._cert_der: bytes | None = None

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
        self._verify(TextFile.COLLATION_B, secret, allow_last_try=allow_last_try)

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

    def read_certificate(self) -> x509.Certificate:
        """EF 0004: the application's certificate (X.509 DER on the simulator)."""
        if self._cert is None:
            der = self._read_tlv_file(
                TextFile.CERTIFICATE, expected_tag=_DER_SEQUENCE, error=MalformedCertificate
            )
            self._cert_der, self._cert = der, load_certificate(der)
        return self._cert

    @property
    def certificate_der(self) -> bytes:
        if self._cert_der is None:
            self.read_certificate()
        assert self._cert_der is not None
        return self._cert_der

    def read_integrity(self) -> IntegrityRecord:
        """EF 0003, parsed (needs the PIN or 照合番号B)."""
        self._require_verified()
        try:
            raw = self._read_tlv_file(TextFile.INTEGRITY, expected_tag=_TAG_INTEGRITY)
        except SecurityStatusNotSatisfied as exc:
            raise PinRequired("integrity record needs the PIN or 照合番号B") from exc
        return parse_integrity(raw)

    def verify_integrity(self, attributes_raw: bytes | None = None) -> IntegrityRecord:
        """Check EF 0003 against the attributes and the EF 0004 key.

        DF32 must equal SHA-256 of the attributes file; DF33 is the AP key's
        PKCS#1 v1.5 / SHA-256 signature over DF31 || DF32. Whether EF 0004 itself
        is trusted is the caller's business (``trust.verify_text_ap_certificate``).
        """
        raw = attributes_raw if attributes_raw is not None else self._attributes_raw
        if raw is None:
            raw = self.read_attributes_raw()
        record = self.read_integrity()
        if hashlib.sha256(raw).digest() != record.attributes_hash:
            raise IntegrityError("attributes hash differs from DF32")
        cert = self.read_certificate()
        try:
            check_rsa_signature(
                cert, record.signature, record.my_number_hash + record.attributes_hash
            )
        except BadSignature as exc:
            raise IntegrityError("DF33 signature does not verify") from exc
        return record

    def prove_presence(self, challenge: bytes) -> bytes:
        """Have the AP sign SHA-256(challenge) with its own key; checked against EF 0004.

        Proves the card itself is present, not a copy of its files (unconfirmed
        on real cards).
        """
        self._ensure_selected()
        cert = self.read_certificate()
        cmd = CommandApdu(
            CLA_PROPRIETARY,
            INS_COMPUTE_SIGNATURE,
            0x00,
            _SIGN_P2_APPLICATION_KEY,
            digest_info_sha256(challenge),
            le=256,
        )
        signature = self.channel.send(cmd).data
        check_rsa_signature(cert, signature, challenge)
        return signature
