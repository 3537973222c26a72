"""The dashboard's typed refusals: one JSON body for each (``{"error": {...}}``).

Each is a ``HospitalError`` with the HTTP status it answers with; the app's handler
turns any of them into ``{"error": {"code", "message_ja", "message_en"}}``. Nothing
of a case is ever in one.
"""

from __future__ import annotations

from hospital.errors import HospitalError

__all__ = [
    "AnswerDeliveryFailed",
    "AnswerRequired",
    "BadRequestBody",
    "CsrfRefused",
    "ReasonRequired",
    "UnknownCase",
    "WebError",
]


class WebError(HospitalError):
    """A request the dashboard refuses; ``status`` is the HTTP status it answers with."""

    status = 400


class CsrfRefused(WebError):
    status = 403
    code = "csrf"
    message_ja = "ページの有効期限が切れました。再読み込みしてからもう一度操作してください。"
    message_en = "The session's CSRF token is missing or wrong."


class AnswerRequired(WebError):
    status = 422
    code = "answer_required"
    message_ja = "受入可か受入不可を選んでください。"
    message_en = "An answer (accept or decline) is required."


class ReasonRequired(WebError):
    status = 422
    code = "reason_required"
    message_ja = "受入不可の理由を選んでください。"
    message_en = "A decline needs one of the listed reasons."


class BadRequestBody(WebError):
    status = 422
    code = "bad_body"
    message_ja = "要求の形式が正しくありません。"
    message_en = "The request body is not the JSON object this API takes."


class UnknownCase(WebError):
    status = 404
    code = "unknown_case"
    message_ja = "この事案は見つかりません（保存期間を過ぎたか、届いていません）。"
    message_en = "No such case at this hospital."


class AnswerDeliveryFailed(WebError):
    """The platform did not take the answer: nothing was recorded; ``code`` is the
    platform error's own code."""

    status = 502
    code = "answer_not_delivered"
    message_ja = "プラットフォームに応答を送れませんでした。電話で連絡してください。"
    message_en = "The answer could not be delivered to the platform; call the crew."

    def __init__(self, platform_code: str) -> None:
        super().__init__()
        self.code = platform_code
