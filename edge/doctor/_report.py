"""A finding (``Check``) and the report of all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    id: str
    status: Status
    message_en: str
    message_ja: str
    fix_en: str | None = None
    fix_ja: str | None = None

    def line(self) -> str:
        label = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}[self.status]
        en = self.message_en + (f"; fix: {self.fix_en}" if self.fix_en else "")
        ja = self.message_ja + (f"（対処: {self.fix_ja}）" if self.fix_ja else "")
        return f"{label} {self.id:<11} {en} / {ja}"

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (warnings included), 1 when a check failed."""
        return 0 if self.ok else 1

    def by_id(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def text(self) -> str:
        return "\n".join(c.line() for c in self.checks)


def ok(cid: str, en: str, ja: str) -> Check:
    return Check(cid, "ok", en, ja)


def warn(cid: str, en: str, ja: str, fix_en: str, fix_ja: str) -> Check:
    return Check(cid, "warn", en, ja, fix_en, fix_ja)


def fail(cid: str, en: str, ja: str, fix_en: str, fix_ja: str) -> Check:
    return Check(cid, "fail", en, ja, fix_en, fix_ja)
