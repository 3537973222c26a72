"""The hospital side's typed errors (Japanese for staff, English for logs and the CLI)."""

from __future__ import annotations

from errbase import KyukyuError

__all__ = [
    "AlreadyInitialised",
    "DatabaseSchemaError",
    "DirectRefused",
    "HospitalError",
    "InsecurePlatformUrl",
    "KeyFileOpenToOthers",
    "NotInitialised",
    "PlatformUnreachable",
    "RegistrationRefused",
    "UserExists",
]


class HospitalError(KyukyuError):
    code = "hospital_error"
    message_ja = "病院システムでエラーが発生しました。"
    message_en = "The hospital service failed."


class NotInitialised(HospitalError):
    code = "hospital_not_initialised"
    message_ja = "病院の初期設定がまだです。`kyukyu hospital init` を実行してください。"
    message_en = "The hospital is not initialised: run `kyukyu hospital init` first."


class KeyFileOpenToOthers(NotInitialised):
    """The key file is there but readable by others (its mode): refused as not
    initialised (same code and messages), told apart by its class."""


class AlreadyInitialised(HospitalError):
    code = "hospital_already_initialised"
    message_ja = "この病院はすでに初期設定済みです。"
    message_en = "This data directory already holds a hospital identity."


class InsecurePlatformUrl(HospitalError):
    code = "insecure_platform_url"
    message_ja = "プラットフォームのURLは https:// にしてください(http:// はこの機械の中だけ)。"
    message_en = "The platform URL must be https:// (http:// only to this machine)."


class RegistrationRefused(HospitalError):
    code = "hospital_registration_refused"
    message_ja = "プラットフォームが病院の登録を拒否しました(トークンを確認してください)。"
    message_en = "The platform refused the hospital's registration."


class PlatformUnreachable(HospitalError):
    code = "platform_unreachable"
    message_ja = "プラットフォームに接続できません。ネットワークを確認してください。"
    message_en = "The platform cannot be reached."


class UserExists(HospitalError):
    code = "user_exists"
    message_ja = "そのユーザー名はすでに登録されています。"
    message_en = "A staff account with this user name exists already."


class DatabaseSchemaError(HospitalError):
    """The hospital database's schema could not be brought to this release's revision."""

    code = "hospital_database_schema"
    message_ja = (
        "病院データベースの構造をこの版に更新できませんでした。受信を始められません。"
        "システム管理者に連絡してください。"
    )
    message_en = "The hospital database's schema could not be upgraded to this release."


class DirectRefused(HospitalError):
    """The direct route refused a device's request (``status``: the HTTP answer)."""

    code = "direct_refused"
    message_ja = "直接送信を受け付けられません。"
    message_en = "The direct route refused the request."

    def __init__(
        self, status: int, code: str, message_en: str, message_ja: str, retry_after: float = 0
    ) -> None:
        super().__init__(message_en)
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ja = message_ja
        self.retry_after = retry_after  # seconds (a 429's ``Retry-After``); 0: none
