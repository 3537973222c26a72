"""The hub's domain errors: a stable ``code``, Japanese and English messages.

The class says what went wrong; which HTTP status answers it is decided in one place,
the app factory's exception handler (``hub_server.main.HTTP_STATUS``). Every error
answer has the body ``{"error": {"code", "message_ja", "message_en"}}``, built by
``error_json`` alone: the app's handlers, the door's middlewares (413, 429) and the
server's protocol (408, 414, 429, 431, 503) all send its bytes (``sync``'s client reads
them: ``sync._http.error_for_response``).

``HubError`` (an ``errbase.KyukyuError``)
 ├── ``InvalidInput``       the request's data cannot be used
 │    └── ``UnknownRecipients``  a recipient is not a registered hospital
 ├── ``NotAuthenticated``   unsigned, stale or badly signed; a bad challenge or card proof
 │    └── ``RequestReplayed``    this signed request was already received
 ├── ``NotAllowed``         a revoked caller, or a role that may not do this
 ├── ``NotFound``           no such thing (or not the caller's)
 ├── ``Conflict``           it exists already, or another request holds it
 │    └── ``CaseExists``         a case with this id was stored by another request
 ├── ``Unavailable``        something the hub needs is missing or down
 └── ``UpstreamUnreadable`` a source the hub reads gave data it cannot read
"""

from __future__ import annotations

from typing import Any

from errbase import KyukyuError, error_body, error_json

__all__ = [
    "CaseExists",
    "Conflict",
    "HubError",
    "InvalidInput",
    "NotAllowed",
    "NotAuthenticated",
    "NotFound",
    "RequestReplayed",
    "TooManyRequests",
    "Unavailable",
    "UnknownRecipients",
    "UpstreamUnreadable",
    "error_body",
    "error_json",
    "revoked_caller",
]


class HubError(KyukyuError):
    """An error the API reports as-is to the caller (never with patient data in it)."""

    def __init__(self, code: str, message_en: str, message_ja: str = "") -> None:
        self.code = code
        self.message_en = message_en
        self.message_ja = message_ja or message_en
        super().__init__()

    def to_body(self) -> dict[str, Any]:
        """The HTTP answer's JSON body."""
        return error_body(self.code, self.message_en, self.message_ja)

    def to_json(self) -> bytes:
        """The HTTP answer's JSON body (``error_json``)."""
        return error_json(self.code, self.message_en, self.message_ja)


class InvalidInput(HubError):
    """The request's data cannot be used (malformed, inconsistent, not allowed values)."""


class NotAuthenticated(HubError):
    """The caller or the card did not prove who it is."""


class NotAllowed(HubError):
    """The caller is known but may not do this (revoked, or the wrong role)."""


def revoked_caller(kind: str) -> NotAllowed:
    """403 ``revoked``: the caller's identity was revoked."""
    return NotAllowed(
        "revoked",
        f"this {kind} has been revoked",
        "この端末(または利用者)は失効しています。技術担当者に連絡してください。",
    )


class NotFound(HubError):
    """No such thing, or not the caller's (the same answer either way)."""


class Conflict(HubError):
    """It exists already, or another request is working on it."""


class Unavailable(HubError):
    """Something the hub needs (trust roots, the medical source) is missing or down."""


class TooManyRequests(HubError):
    """The caller sends faster than its limit (429 with ``Retry-After``)."""

    def __init__(
        self, code: str, message_en: str, message_ja: str = "", *, retry_after: float = 1.0
    ) -> None:
        super().__init__(code, message_en, message_ja)
        self.retry_after = retry_after


class UpstreamUnreadable(HubError):
    """A source the hub reads from returned data the hub cannot read."""


class UnknownRecipients(InvalidInput):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            "unknown_recipient",
            f"not registered hospitals: {', '.join(missing)}",
            "登録されていない病院が送信先に含まれています。",
        )


class RequestReplayed(NotAuthenticated):
    def __init__(self) -> None:
        super().__init__(
            "replayed_request",
            "this request was already received",
            "同じリクエストが再送されました。",
        )


class CaseExists(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "case_exists",
            "a case with this id already exists (use the same Idempotency-Key to retry)",
            "この事案は既に送信されています。",
        )


class CaseClosed(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "case_closed",
            "the case was closed (中止 / 不搬送)",
            "この事案は中止されています。",
        )
