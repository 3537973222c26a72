"""The one base of the project's typed errors (stdlib only: every layer may import it).

Every error the paramedic, a technician or a log may see carries a stable
``code`` (JSON output, tests), a Japanese message for the screen and an English
one for logs and CLIs. ``detail`` is for developers and never holds card or
patient data.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["InvalidSettings", "KyukyuError", "error_body", "error_json"]


def error_body(code: str, message_en: str, message_ja: str) -> dict[str, Any]:
    """The one error body every HTTP service of the project answers with (the platform
    and the hospital's dashboard): ``{"error": {code, message_ja, message_en}}``."""
    return {"error": {"code": code, "message_ja": message_ja, "message_en": message_en}}


def error_json(code: str, message_en: str, message_ja: str) -> bytes:
    """``error_body`` as UTF-8 JSON bytes, for layers that send raw bytes."""
    body = error_body(code, message_en, message_ja)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class KyukyuError(Exception):
    """Base of ``ReaderError``, ``JpkiError``, ``SyncError``."""

    code = "error"
    message_ja = "エラーが発生しました。"
    message_en = "An error occurred."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(self.message_en if detail is None else f"{self.message_en} ({detail})")

    def to_dict(self) -> dict[str, object]:
        """A JSON-able description, free of card and patient data."""
        out: dict[str, object] = {
            "code": self.code,
            "message_ja": self.message_ja,
            "message_en": self.message_en,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


class InvalidSettings(KyukyuError):
    """A role's settings are missing or malformed (base of each role's settings error).

    ``detail`` names the variable and what is wrong with it; the command line prints
    ``one_line()`` on stderr and exits with status 2, without a traceback.
    """

    code = "settings_invalid"
    message_ja = "設定に誤りがあります。"
    message_en = "The settings are invalid"

    def __str__(self) -> str:
        return f"{self.message_en}: {self.detail}" if self.detail else self.message_en

    def one_line(self) -> str:
        """English, then Japanese, on one line (for a command's stderr)."""
        return " ".join(f"{self} / {self.message_ja}".split())
