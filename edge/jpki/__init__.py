"""The My Number card's applications as plain protocol code over an ``ApduChannel``.

``JpkiSession`` (公的個人認証AP), ``TextSession`` (券面事項入力補助AP), ``VisualSession``
(券面AP), the BER-TLV
helper, constants and the error tree; certificate trust lives in
``edge.jpki.trust``, the revocation snapshot in ``edge.jpki.revocation`` and the
one-tap flow in ``edge.jpki.read``. Nothing here imports a driver (pyscard,
nfcpy): the transport is whatever ``Connection`` the channel wraps.
"""

from __future__ import annotations

from ._constants import AID_JPKI, AID_TEXT, AID_VISUAL, JpkiFile, TextFile, TokenType
from ._cvc import CardKeyCertificate, CardVerifiableCertificate, parse_card_key, parse_cvc
from ._errors import (
    BadSignature,
    CvcCaNotPinned,
    CvcSignatureInvalid,
    Expired,
    IntegrityError,
    InvalidCollationNumber,
    InvalidPinFormat,
    JpkiError,
    LastTryNeedsConfirmation,
    MalformedCertificate,
    MalformedData,
    NotMyNumberCard,
    NoTrustAnchors,
    NotYetValid,
    PinBlocked,
    PinError,
    PinNotTried,
    PinRequired,
    RevocationSnapshotError,
    Revoked,
    RootNotPinned,
    TestRootRefused,
    TrustError,
    UnknownToken,
    UntrustedIssuer,
    WrongExtendedKeyUsage,
    WrongKeyUsage,
    WrongPin,
    WrongPolicy,
)
from ._jpki import Availability, JpkiSession, TokenInfo, digest_info_sha256
from ._outcome import CertificateCheck, CertificateStatus, Check, CheckStatus
from ._text import (
    Attributes,
    IntegrityRecord,
    TextSession,
    check_collation_b,
    parse_attributes,
    parse_integrity,
)
from ._tlv import Tlv, encode_tlv, header_total_length, parse_tlv, parse_tlvs, split_tlvs
from ._visual import FaceRecord, VisualSession, parse_face_record

__all__ = [
    "AID_JPKI",
    "AID_TEXT",
    "AID_VISUAL",
    "Attributes",
    "Availability",
    "BadSignature",
    "CardKeyCertificate",
    "CardVerifiableCertificate",
    "CertificateCheck",
    "CertificateStatus",
    "Check",
    "CheckStatus",
    "CvcCaNotPinned",
    "CvcSignatureInvalid",
    "Expired",
    "FaceRecord",
    "IntegrityError",
    "IntegrityRecord",
    "InvalidCollationNumber",
    "InvalidPinFormat",
    "JpkiError",
    "JpkiFile",
    "JpkiSession",
    "LastTryNeedsConfirmation",
    "MalformedCertificate",
    "MalformedData",
    "NoTrustAnchors",
    "NotMyNumberCard",
    "NotYetValid",
    "PinBlocked",
    "PinError",
    "PinNotTried",
    "PinRequired",
    "RevocationSnapshotError",
    "Revoked",
    "RootNotPinned",
    "TestRootRefused",
    "TextFile",
    "TextSession",
    "Tlv",
    "TokenInfo",
    "TokenType",
    "TrustError",
    "UnknownToken",
    "UntrustedIssuer",
    "VisualSession",
    "WrongExtendedKeyUsage",
    "WrongKeyUsage",
    "WrongPin",
    "WrongPolicy",
    "check_collation_b",
    "digest_info_sha256",
    "encode_tlv",
    "header_total_length",
    "parse_attributes",
    "parse_card_key",
    "parse_cvc",
    "parse_face_record",
    "parse_integrity",
    "parse_tlv",
    "parse_tlvs",
    "split_tlvs",
]
