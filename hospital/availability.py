"""The hospital's 応需状況: one function sends a change to the platform and records who
made it (the dashboard's one-tap buttons, the local API of a bed-management system and
``kyukyu hospital availability set`` all call ``set_availability``).

The platform is the truth (``POST /v1/hospitals/me/availability``, signed by the
hospital's key); the change is recorded here only once the platform took it, in the
hospital's audit trail (action ``availability_set``: who, the item, the status, the
expiry, the note), which is the panel's "who changed what, when".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from errbase import KyukyuError
from hospital.store import HospitalStore
from sync import PlatformError
from sync.availability import MAX_NOTE, SET_STATUSES, parse_time
from sync.receiver import HospitalClient
from sync.vocabulary import AVAILABILITY_ITEM

__all__ = [
    "AvailabilityChange",
    "AvailabilityRefused",
    "history",
    "parse_change",
    "set_availability",
]

ACTION = "availability_set"


class AvailabilityRefused(KyukyuError):
    """A change that is not one (unknown item or status, bad expiry or note)."""

    code = "availability_invalid"
    message_ja = "応需状況の指定が正しくありません（診療科・状態・有効期限を確認してください）。"
    message_en = "Not a valid availability change (check the item, status and expiry)."


class AvailabilityNotSent(KyukyuError):
    """The platform did not take the change: nothing was recorded."""

    code = "availability_not_sent"
    message_ja = (
        "プラットフォームに送れませんでした。応需状況は変わっていません。"
        "ネットワークを確認して、もう一度押してください。"
    )
    message_en = "The platform did not take it; nothing changed. Check the network and retry."


@dataclass(frozen=True)
class AvailabilityChange:
    code: str
    status: str  # available | consult | unavailable | clear
    expires_at: datetime | None
    note: str | None = None
    count: int | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "status": self.status}
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at.astimezone(UTC).isoformat()
        if self.note:
            out["note"] = self.note
        if self.count is not None:
            out["count"] = self.count
        return out


def parse_change(
    raw: Any, *, default_hours: float, now: datetime | None = None
) -> AvailabilityChange:
    """One change from loose input (a form, JSON, the command line): ``code``, ``status``,
    optional ``note``, ``count`` (ICU), and ``expires_at`` or ``hours`` (default
    ``default_hours``). Raises ``AvailabilityRefused``."""
    if not isinstance(raw, dict):
        raise AvailabilityRefused("not an object")
    now = now or datetime.now(UTC)
    code, status = raw.get("code"), raw.get("status")
    if code not in AVAILABILITY_ITEM or status not in (*SET_STATUSES, "clear"):
        raise AvailabilityRefused(f"item {code!r} status {status!r}")
    note = raw.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE or "\x00" in note):
        raise AvailabilityRefused("note")
    count = raw.get("count")
    if count is not None:
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise AvailabilityRefused("count") from None
    expires: datetime | None = None
    if status != "clear":
        if raw.get("expires_at") is not None:
            expires = parse_time(raw.get("expires_at"))
            if expires is None:
                raise AvailabilityRefused("expires_at")
        else:
            try:
                hours = float(raw.get("hours") or default_hours)
            except (TypeError, ValueError):
                raise AvailabilityRefused("hours") from None
            if not 0 < hours <= 72:
                raise AvailabilityRefused("hours")
            expires = now + timedelta(hours=hours)
    return AvailabilityChange(str(code), str(status), expires, (note or "").strip() or None, count)


def set_availability(
    client: HospitalClient, store: HospitalStore, changes: list[AvailabilityChange], *, by: str
) -> dict[str, Any]:
    """Send ``changes`` to the platform, then record them as ``by``'s; the platform's new
    document. Raises ``AvailabilityNotSent`` (nothing recorded) when it did not take them."""
    try:
        doc = client.set_availability([c.wire() for c in changes])
    except PlatformError as exc:
        raise AvailabilityNotSent(exc.code) from None
    for c in changes:
        detail = {"code": c.code, "status": c.status, "note": c.note, "count": c.count}
        if c.expires_at is not None:
            detail["expires_at"] = c.expires_at.astimezone(UTC).isoformat()
        store.audit(by, ACTION, detail=json.dumps(detail, ensure_ascii=False))
    return doc


def history(store: HospitalStore, limit: int = 50) -> list[dict[str, Any]]:
    """Who changed what, when: the newest ``limit`` changes recorded here."""
    out = []
    for row in reversed(store.audit_rows(ACTION)[-limit:]):
        try:
            detail = json.loads(row.detail)
        except ValueError:
            continue
        if isinstance(detail, dict):
            out.append({"at": row.at, "by": row.actor, **detail})
    return out
