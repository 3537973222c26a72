"""The hub's typed errors: a stable ``code``, Japanese and English messages, an HTTP status.

``HubError`` is a ``errbase.KyukyuError`` (the project's one error base). Every
error answer has the body ``{"error": {"code", "message_ja", "message_en"}}``.
"""

from __future__ import annotations

from typing import Any

from errbase import KyukyuError

__all__ = ["HubError"]


class HubError(KyukyuError):
    """An error the API reports as-is to the caller (never with patient data in it)."""

    def __init__(self, status: int, code: str, message_en: str, message_ja: str = "") -> None:
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ja = message_ja or message_en
        super().__init__()

    def to_body(self) -> dict[str, Any]:
        """The HTTP answer's JSON body."""
        return {
            "error": {
                "code": self.code,
                "message_ja": self.message_ja,
                "message_en": self.message_en,
            }
        }
