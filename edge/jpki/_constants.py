"""AIDs, file identifiers, instructions and labels of the My Number card (docs/jpki-card.md)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AID_JPKI",
    "AID_TEXT",
    "AID_VISUAL",
    "CLA",
    "CLA_PROPRIETARY",
    "DIGEST_INFO_SHA256_PREFIX",
    "INS_COMPUTE_SIGNATURE",
    "INS_READ_BINARY",
    "INS_SELECT",
    "INS_VERIFY",
    "TOKEN_LABELS",
    "JpkiFile",
    "TextFile",
    "TokenType",
    "VisualFile",
]

CLA = 0x00
CLA_PROPRIETARY = 0x80

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_VERIFY = 0x20
INS_COMPUTE_SIGNATURE = 0x2A

# SELECT P1: by DF name (04) or EF id (02); P2 0C = no response data.
SELECT_BY_DF_NAME = 0x04
SELECT_EF = 0x02
SELECT_NO_FCI = 0x0C

# Application identifiers (SELECT by DF name).
AID_JPKI = bytes.fromhex("D392F000260100000001")  # 公的個人認証AP
AID_TEXT = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
AID_VISUAL = bytes.fromhex("D3921000310001010402")  # 券面事項確認AP (券面AP)

# DigestInfo header for SHA-256 (RFC 8017 §9.2 note 1); the card adds PKCS#1 v1.5 padding.
DIGEST_INFO_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


class JpkiFile:
    """EFs of the JPKI AP (SELECT EF ``00 A4 02 0C 02 FID``)."""

    TOKEN_INFO = 0x0006
    AVAILABILITY = 0x0008
    AUTH_CERT = 0x000A
    AUTH_CA_CERT = 0x000B
    AUTH_KEY = 0x0017
    AUTH_PIN = 0x0018


class TextFile:
    """EFs of the text AP that this project may touch.

    Deliberately absent: EF 0001 (the My Number) and EF 0014 (照合番号A, which *is*
    the My Number). The project never reads, stores, logs or sends it.
    """

    PIN = 0x0011
    COLLATION_B = 0x0015  # 照合番号B
    ATTRIBUTES = 0x0002
    INTEGRITY = 0x0003  # FF30 { DF31 h(EF 0001), DF32 h(DF22-DF25), DF33 sig }
    CERTIFICATE = 0x0004  # the issuer key's CVC: 7F21 { 5F4E body, 5F37 sig }
    KEY_INFO = 0x0005  # FF40 { DF41, DF42 key id, DF43 }
    CARD_KEY = 0x0007  # FF50 { DF51 { 90, 91 }, DF52 sig by the EF 0004 key }


class VisualFile:
    """EFs of the visual AP (券面AP) that this project may touch (no 照合番号A)."""

    COLLATION_B = 0x0012
    FACE = 0x0002


class TokenType(StrEnum):
    """What carries the credential."""

    CARD = "card"
    ANDROID = "android"
    IPHONE = "iphone"


# Labels in the first 32 bytes of EF 0006 (padded).
TOKEN_LABELS: dict[str, TokenType] = {
    "JPKIAPICCTOKEN2": TokenType.CARD,
    "JPKIAPICCTOKEN": TokenType.CARD,
    "JPKIAPGPSETOKEN": TokenType.ANDROID,
    "JPKIAPIOSTOKEN": TokenType.IPHONE,
}

TOKEN_LABEL_LENGTH = 32
