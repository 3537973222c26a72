"""Errors of the card applications and of certificate trust.

Every error carries a stable ``code``, a Japanese message for the paramedic and
an English one for logs. Errors of the reader layer (``CardRemoved``,
``TransportError``, ``ApduError`` ...) pass through unchanged: they already
have the same shape. No error message ever contains card data::

    JpkiError
     ├── NotMyNumberCard          the JPKI AP (or text AP) cannot be selected
     ├── UnknownToken             EF 0006 holds a label we do not know
     ├── MalformedData            DER/BER that does not parse, truncated files
     │    └── MalformedCertificate
     ├── PinError
     │    ├── InvalidPinFormat / InvalidCollationNumber  rejected before sending
     │    ├── PinRequired             6982 / not logged in (Android auth cert)
     │    ├── PinNotTried             not sent: the same PIN was just refused elsewhere
     │    ├── WrongPin(tries_left)    63Cx
     │    │    └── WrongCollationNumber    the same, on 照合番号B
     │    ├── PinBlocked              63C0 / 6983 / 6984
     │    │    └── CollationNumberBlocked
     │    └── LastTryNeedsConfirmation  one try left, not confirmed
     │         └── CollationNumberLastTry
     ├── InvalidBirthDate         not YYYYMMDD / YYYY-MM-DD (照合番号B's era helper)
     │    ├── BirthDateNotADate       no such day (2月30日)
     │    ├── BirthDateBeforeMeiji    before 1868-10-23 (明治元年)
     │    └── BirthDateInFuture       after today
     ├── BadSignature             the card's signature does not verify
     ├── IntegrityError           text AP integrity record does not match (tampered)
     │    └── CvcSignatureInvalid     EF 0004 does not verify under its pinned CA key
     └── TrustError
          ├── UntrustedIssuer         no trusted root signed it
          ├── Expired / NotYetValid   validity in JST
          ├── WrongKeyUsage / WrongExtendedKeyUsage / WrongPolicy
          ├── Revoked
          ├── RootNotPinned / TestRootRefused / NoTrustAnchors
          ├── CvcCaNotPinned          EF 0004's CA key id is not pinned on this device
          └── RevocationSnapshotError
"""

from __future__ import annotations

from errbase import KyukyuError

__all__ = [
    "BadSignature",
    "BirthDateBeforeMeiji",
    "BirthDateInFuture",
    "BirthDateNotADate",
    "CollationNumberBlocked",
    "CollationNumberLastTry",
    "CvcCaNotPinned",
    "CvcSignatureInvalid",
    "Expired",
    "IntegrityError",
    "InvalidBirthDate",
    "InvalidCollationNumber",
    "InvalidPinFormat",
    "JpkiError",
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
    "TrustError",
    "UnknownToken",
    "UntrustedIssuer",
    "WrongCollationNumber",
    "WrongExtendedKeyUsage",
    "WrongKeyUsage",
    "WrongPin",
    "WrongPolicy",
]


class JpkiError(KyukyuError):
    """Base of every error raised by ``edge.jpki``."""

    code = "jpki_error"
    message_ja = "カードの読み取りでエラーが発生しました。"
    message_en = "Reading the card failed."


class NotMyNumberCard(JpkiError):
    code = "not_my_number_card"
    message_ja = "マイナンバーカードではありません。カードを確認してください。"
    message_en = "This is not a My Number card (the JPKI application is missing)."


class UnknownToken(JpkiError):
    code = "unknown_token"
    message_ja = "対応していない種類のカードまたはスマートフォンです。"
    message_en = "Unknown token type in the JPKI token information."


class MalformedData(JpkiError):
    code = "malformed_data"
    message_ja = "カードのデータが壊れています。もう一度カードをタッチしてください。"
    message_en = "The card returned malformed data."


class MalformedCertificate(MalformedData):
    code = "malformed_certificate"
    message_ja = "カードの証明書が壊れています。もう一度カードをタッチしてください。"
    message_en = "The certificate is truncated or malformed."


class PinError(JpkiError):
    code = "pin_error"
    message_ja = "暗証番号の確認でエラーが発生しました。"
    message_en = "PIN verification failed."


class InvalidPinFormat(PinError):
    code = "invalid_pin_format"
    message_ja = "暗証番号は数字4桁です。入力を確認してください。"
    message_en = "The PIN must be exactly 4 digits (nothing was sent to the card)."


class InvalidCollationNumber(PinError):
    code = "invalid_collation_b"
    message_ja = (
        "照合番号Bはカード券面のとおり14桁の数字です：生年月日（和暦の年・月・日の6桁。"
        "例 昭和55年2月17日→550217）、有効期限の西暦4桁、セキュリティコード4桁。"
    )
    message_en = (
        "Collation number B is 14 digits as printed on the card: the birth date in the "
        "Japanese era, YYMMDD (Showa 55-02-17, i.e. 1980-02-17, is 550217), the card's expiry "
        "year (4 digits) and the security code (4 digits). Nothing was sent to the card."
    )


class PinRequired(PinError):
    code = "pin_required"
    message_ja = "暗証番号（4桁）の入力が必要です。本人に暗証番号を入力してもらってください。"
    message_en = "This token needs the 4-digit PIN: ask the patient to enter it."


class PinNotTried(PinError):
    code = "pin_not_tried"
    message_ja = (
        "暗証番号が違うため、券面事項の読み取りは行いませんでした。照合番号Bで読み取れます。"
    )
    message_en = (
        "The PIN was refused by the JPKI AP, so it was not tried on the text AP "
        "(its tries are kept); use collation number B instead."
    )


class WrongPin(PinError):
    code = "wrong_pin"
    message_ja = "暗証番号が違います。"
    message_en = "Wrong PIN."

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        super().__init__(f"{tries_left} tries left")
        self.message_ja = f"暗証番号が違います。残り{tries_left}回です。"
        self.message_en = f"Wrong PIN: {tries_left} tries left."

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["tries_left"] = self.tries_left
        return out


class PinBlocked(PinError):
    code = "pin_blocked"
    message_ja = "暗証番号がロックされています。市区町村窓口での再設定が必要です。"
    message_en = "The PIN is blocked (no tries left); it must be reset at the municipality."


class LastTryNeedsConfirmation(PinError):
    code = "last_try_needs_confirmation"
    message_ja = (
        "暗証番号の残り回数があと1回です。間違えるとロックされます。"
        "確認のうえ再度実行してください。"
    )
    message_en = "Only one PIN try is left: confirm before trying (a wrong PIN blocks the card)."

    def __init__(self, tries_left: int = 1) -> None:
        self.tries_left = tries_left
        super().__init__(f"{tries_left} try left")

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["tries_left"] = self.tries_left
        return out


class WrongCollationNumber(WrongPin):
    """照合番号B refused by the card (``63Cx``): its own counter, not the PIN's."""

    code = "wrong_collation_b"
    message_ja = "照合番号Bが違います。"
    message_en = "Wrong collation number B."

    def __init__(self, tries_left: int) -> None:
        super().__init__(tries_left)
        self.message_ja = f"照合番号Bが違います。残り{tries_left}回です。"
        self.message_en = f"Wrong collation number B: {tries_left} tries left."


class CollationNumberBlocked(PinBlocked):
    code = "collation_b_blocked"
    message_ja = "照合番号Bがロックされています。市区町村窓口での解除が必要です。"
    message_en = "Collation number B is blocked (no tries left)."


class CollationNumberLastTry(LastTryNeedsConfirmation):
    code = "collation_b_last_try"
    message_ja = (
        "照合番号Bの残り回数があと1回です。間違えるとロックされます。"
        "確認のうえ再度実行してください。"
    )
    message_en = (
        "Only one try of collation number B is left: confirm before trying "
        "(a wrong number blocks it)."
    )


class InvalidBirthDate(JpkiError, ValueError):
    """A Western birth date that cannot be turned into 照合番号B's era digits."""

    code = "invalid_birth_date"
    message_ja = "生年月日は西暦8桁（例 19800301）または 1980-03-01 の形で入力してください。"
    message_en = "Give the birth date as YYYYMMDD or YYYY-MM-DD (e.g. 1980-03-01)."


class BirthDateNotADate(InvalidBirthDate):
    code = "birth_date_not_a_date"
    message_ja = (
        "存在しない日付です。西暦の年4桁・月2桁・日2桁で入力してください"
        "（例 1980年3月1日→19800301）。"
    )
    message_en = "No such date: key the year (4), month (2) and day (2), e.g. 19800301."


class BirthDateBeforeMeiji(InvalidBirthDate):
    code = "birth_date_before_meiji"
    message_ja = (
        "明治より前（1868年10月23日より前）の日付は和暦に変換できません。"
        "西暦の年を確認してください。"
    )
    message_en = "Dates before the Meiji era (1868-10-23) have no era form: check the year."


class BirthDateInFuture(InvalidBirthDate):
    code = "birth_date_in_future"
    message_ja = "生年月日が今日より後になっています。西暦の年を確認してください。"
    message_en = "The birth date is after today: check the year."


class BadSignature(JpkiError):
    code = "bad_signature"
    message_ja = "カードの署名を確認できませんでした。もう一度カードをタッチしてください。"
    message_en = "The signature returned by the card does not verify against its certificate."


class IntegrityError(JpkiError):
    code = "integrity_error"
    message_ja = "券面事項の真正性を確認できませんでした。"
    message_en = "The integrity record of the card attributes does not verify."


class CvcSignatureInvalid(IntegrityError):
    code = "cvc_signature_invalid"
    message_ja = "券面事項の発行者証明書が改ざんされています。この券面事項は使えません。"
    message_en = (
        "The text AP's issuer certificate (EF 0004) does not verify under its pinned CA key."
    )


class TrustError(JpkiError):
    code = "untrusted_certificate"
    message_ja = "証明書を確認できませんでした。"
    message_en = "The certificate is not trusted."


class UntrustedIssuer(TrustError):
    code = "untrusted_issuer"
    message_ja = (
        "証明書の発行元を確認できません。正規のマイナンバーカードではない可能性があります。"
    )
    message_en = "No trusted root signed this certificate."


class Expired(TrustError):
    code = "certificate_expired"
    message_ja = "証明書の有効期限が切れています。"
    message_en = "The certificate has expired."


class NotYetValid(TrustError):
    code = "certificate_not_yet_valid"
    message_ja = "証明書の有効期間がまだ始まっていません。端末の時刻を確認してください。"
    message_en = "The certificate is not valid yet (check the device clock)."


class WrongKeyUsage(TrustError):
    code = "wrong_key_usage"
    message_ja = "利用者証明用の証明書ではありません。"
    message_en = "The certificate's key usage is not digitalSignature."


class WrongExtendedKeyUsage(TrustError):
    code = "wrong_extended_key_usage"
    message_ja = "利用者証明用の証明書ではありません。"
    message_en = "The certificate's extended key usage is not clientAuth."


class WrongPolicy(TrustError):
    code = "wrong_policy"
    message_ja = "利用者証明用の証明書ではありません。"
    message_en = "The certificate does not carry the JPKI user-authentication policy."


class Revoked(TrustError):
    code = "certificate_revoked"
    message_ja = "この証明書は失効しています。"
    message_en = "The certificate is revoked."


class RootNotPinned(TrustError):
    code = "root_not_pinned"
    message_ja = "信頼できないルート証明書です。"
    message_en = "A root certificate does not match any pinned fingerprint."


class TestRootRefused(RootNotPinned):
    __test__ = False  # not a pytest test class
    code = "test_root_refused"
    message_ja = "テスト用のルート証明書は本番モードでは使えません。"
    message_en = "A test root is only accepted in explicit test mode."


class CvcCaNotPinned(TrustError):
    code = "cvc_ca_not_pinned"
    message_ja = "券面事項の発行元をこの端末では確認できません。券面事項は未検証として表示します。"
    message_en = "The CA key of the text AP's issuer certificate (EF 0004) is not pinned here."


class NoTrustAnchors(TrustError):
    code = "no_trust_anchors"
    message_ja = "ルート証明書が設定されていません。技術担当者に連絡してください。"
    message_en = "No trusted root is installed: provision the JPKI roots."


class RevocationSnapshotError(TrustError):
    code = "revocation_snapshot_invalid"
    message_ja = "失効情報のファイルが不正です。"
    message_en = "The revocation snapshot is malformed."
