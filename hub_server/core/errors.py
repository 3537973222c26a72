"""The hub's typed errors: a stable ``code``, Japanese and English messages, an HTTP status.

Every error answer has the body ``{"error": {"code", "message_ja", "message_en"}}``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HubError"]


class HubError(Exception):
    """An error the API reports as-is to the caller."""

    def __init__(self, status: int, code: str, message_en: str, message_ja: str = "") -> None:
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ja = message_ja or message_en
        super().__init__(message_en)

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message_ja": self.message_ja,
                "message_en": self.message_en,
            }
        }
