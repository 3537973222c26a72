"""Errors of the reader layer.

Every error carries a stable ``code`` (for JSON output and tests), a Japanese
message for the paramedic and an English one for logs::

    ReaderError
     ├── NoReader            no reader connected / named reader missing
     ├── NoCard              no card arrived before the timeout / cancelled
     ├── CardRemoved         the card left the field (normal mid-read: retry)
     ├── TransportError      the driver failed (pcscd gone, USB error, socket)
     ├── MalformedApdu       bytes that are not a valid (short) APDU
     └── ApduError(sw, data) the card answered a status word other than 9000
          ├── WrongLength               6700
          ├── SecurityStatusNotSatisfied 6982
          ├── AuthMethodBlocked         6983 / 6984 / 63C0
          ├── ConditionsNotSatisfied    6985
          ├── FileNotFound              6A82
          ├── IncorrectP1P2             6A86
          ├── WrongOffset               6B00
          ├── InsNotSupported           6D00
          ├── ClaNotSupported           6E00
          └── VerificationFailed        63Cx (``tries_left``)
"""

from __future__ import annotations

from errbase import KyukyuError

__all__ = [
    "ApduError",
    "AuthMethodBlocked",
    "CardRemoved",
    "ClaNotSupported",
    "ConditionsNotSatisfied",
    "FileNotFound",
    "IncorrectP1P2",
    "InsNotSupported",
    "MalformedApdu",
    "NoCard",
    "NoReader",
    "ReaderError",
    "SecurityStatusNotSatisfied",
    "TransportError",
    "VerificationFailed",
    "WrongLength",
    "WrongOffset",
    "error_for_sw",
]


class ReaderError(KyukyuError):
    """Base of every error raised below ``edge.jpki``."""

    code = "reader_error"
    message_ja = "カードリーダーでエラーが発生しました。"
    message_en = "The card reader reported an error."


class NoReader(ReaderError):
    code = "no_reader"
    message_ja = "カードリーダーが見つかりません。接続を確認してください。"
    message_en = "No card reader found. Check that the reader is connected."


class NoCard(ReaderError):
    code = "no_card"
    message_ja = "カードが検出されませんでした。カードをタッチしてください。"
    message_en = "No card was presented."


class CardRemoved(ReaderError):
    code = "card_removed"
    message_ja = "カードが離れました。もう一度カードをタッチしてください。"
    message_en = "The card was removed during the read. Tap the card again."


class TransportError(ReaderError):
    code = "transport_error"
    message_ja = "カードリーダーとの通信に失敗しました。もう一度お試しください。"
    message_en = "Communication with the reader failed."


class MalformedApdu(ReaderError):
    code = "malformed_apdu"
    message_ja = "カードからの応答が不正です。もう一度カードをタッチしてください。"
    message_en = "Malformed APDU."


class ApduError(ReaderError):
    """The card answered with a status word other than ``9000``."""

    code = "unexpected_status"
    message_ja = "カードが想定外の応答を返しました。"
    message_en = "The card returned an unexpected status word."

    def __init__(self, sw: int, data: bytes = b"", detail: str | None = None) -> None:
        self.sw = sw
        # Response data is kept for the caller but never printed: it may be personal.
        self.data = data
        super().__init__(f"SW={sw:04X}" + (f", {detail}" if detail else ""))


class WrongLength(ApduError):
    code = "wrong_length"
    message_en = "Wrong length (6700)."


class SecurityStatusNotSatisfied(ApduError):
    code = "security_status_not_satisfied"
    message_ja = "暗証番号の入力が必要です。"
    message_en = "Security status not satisfied: a PIN is needed (6982)."


class AuthMethodBlocked(ApduError):
    code = "pin_blocked"
    message_ja = "暗証番号がロックされています。市区町村窓口での再設定が必要です。"
    message_en = "The PIN is blocked (no tries left)."


class ConditionsNotSatisfied(ApduError):
    code = "conditions_not_satisfied"
    message_en = "Conditions of use not satisfied (6985)."


class FileNotFound(ApduError):
    code = "file_not_found"
    message_ja = "カード内に必要なデータが見つかりません。マイナンバーカードか確認してください。"
    message_en = "File or application not found (6A82)."


class IncorrectP1P2(ApduError):
    code = "incorrect_p1p2"
    message_en = "Incorrect P1/P2 (6A86)."


class WrongOffset(ApduError):
    code = "wrong_offset"
    message_en = "Offset beyond the end of the file (6B00)."


class InsNotSupported(ApduError):
    code = "ins_not_supported"
    message_en = "Instruction not supported (6D00)."


class ClaNotSupported(ApduError):
    code = "cla_not_supported"
    message_en = "Class not supported (6E00)."


class VerificationFailed(ApduError):
    """``63Cx``: wrong PIN (or a retry-counter query); ``tries_left`` = x."""

    code = "wrong_pin"
    message_ja = "暗証番号が違います。"
    message_en = "Verification failed."

    def __init__(self, sw: int, data: bytes = b"") -> None:
        self.tries_left = sw & 0x0F
        super().__init__(sw, data, f"{self.tries_left} tries left")


_BY_SW: dict[int, type[ApduError]] = {
    0x6700: WrongLength,
    0x6982: SecurityStatusNotSatisfied,
    0x6983: AuthMethodBlocked,
    0x6984: AuthMethodBlocked,
    0x63C0: AuthMethodBlocked,
    0x6985: ConditionsNotSatisfied,
    0x6A82: FileNotFound,
    0x6A86: IncorrectP1P2,
    0x6B00: WrongOffset,
    0x6D00: InsNotSupported,
    0x6E00: ClaNotSupported,
}


def error_for_sw(sw: int, data: bytes = b"") -> ApduError:
    """Map a non-``9000`` status word to its typed error (one mapping, one place)."""
    cls = _BY_SW.get(sw)
    if cls is not None:
        return cls(sw, data)
    if sw & 0xFFF0 == 0x63C0:
        return VerificationFailed(sw, data)
    return ApduError(sw, data)


class Cancelled(ReaderError):
    code = "cancelled"
    message_ja = "読み取りを中止しました。"
    message_en = "The read was cancelled."


__all__ += ["Cancelled"]
