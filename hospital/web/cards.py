"""Case cards: what a stored case looks like on the dashboard, one card at a time.

Each card is rendered on its own (``_case.html``): nothing one case holds can take
the list or another card down; a case that cannot be read or rendered is a card
saying so (``_case_unreadable.html``, and if even that fails a fixed sentence).
Every card carries its ``state`` (the ``data-status`` word of its badge) and its
``version`` (what may change of it after it arrived: answer and whether the
platform has it yet, destination, closure), both computed from the row alone,
without opening the case: the list ``GET /api/cases`` gives them for every case, so
a browser fetches again only the cards whose version it does not have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.templating import Jinja2Templates
from markupsafe import escape

from hospital.casefile import MAX_SHORT, CaseView, clip, from_unix, read_case
from hospital.settings import HospitalSettings
from hospital.store import CaseRow, HospitalStore, Rejection

__all__ = ["Card", "CardRenderer", "Sender", "case_state", "case_version", "sender_of"]

log = logging.getLogger("hospital.web")

# A start (覚知 / 接触 / sealing) later than now by more, or longer ago, is not counted from.
_FUTURE_SLACK = timedelta(minutes=5)
_LONGEST = timedelta(days=31)

Closure = tuple[str, datetime]


@dataclass(frozen=True)
class Sender:
    """Who sent a case, as the dashboard shows it.

    ``department``: the fire department the platform vouches for (its signed
    device-key document; None for cases stored before it was kept). ``claim``: what
    the case itself says (fire department and ambulance), shown beside the vouched
    sender only where it differs (``differs``), or marked unverified when nothing
    vouches for the sender.
    """

    device_id: str
    department: str | None
    claim: str | None
    differs: bool

    @property
    def verified(self) -> bool:
        return self.department is not None


def sender_of(view: CaseView | None, device_id: str, department: str | None) -> Sender:
    claimed_department = view.fire_department if view is not None else None
    parts = [x for x in (claimed_department, view.ambulance if view else None) if x]
    claim = " ".join(parts) or None
    differs = (
        department is not None
        and claimed_department is not None
        and claimed_department.strip() != department.strip()
    )
    return Sender(
        device_id=clip(device_id, MAX_SHORT),
        department=None if department is None else clip(department, MAX_SHORT),
        claim=claim,
        differs=differs,
    )


def _plausible_start(start: datetime | None, now: datetime) -> datetime | None:
    if start is None:
        return None
    try:
        return start if now - _LONGEST <= start <= now + _FUTURE_SLACK else None
    except (OverflowError, TypeError):
        return None


def _since(start: datetime | None, now: datetime) -> str:
    if start is None:
        return "—"
    if _plausible_start(start, now) is None:
        return "—（時刻不正）"
    minutes = max(0, int((now - start).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}分"
    return f"{minutes // 60}時間{minutes % 60}分"


def _left(arrival: datetime, now: datetime) -> str:
    """The minutes to an expected arrival (あと8分), or that it is past (予定超過)."""
    try:
        minutes = int((arrival - now).total_seconds() // 60)
    except (OverflowError, TypeError):
        return ""
    if minutes < 0:
        return f"（予定超過 {-minutes}分）" if -minutes < 24 * 60 else "（予定超過）"
    return f"（あと{minutes}分）" if minutes < 24 * 60 else ""


def iso(moment: datetime | None) -> str:
    """A template filter: ``moment`` as ISO 8601, or "" when it cannot be written."""
    try:
        return moment.isoformat() if moment is not None else ""
    except (OverflowError, ValueError):
        return ""


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def case_state(row: CaseRow, closed: bool) -> str:
    """Where the case stands, as its badge's ``data-status`` says it."""
    if closed:
        return "closed"
    if row.destination == "chosen":
        return "destination"
    if row.destination == "chosen_phone":
        return "destination-phone"
    if row.destination == "elsewhere":
        return "elsewhere"
    if row.answer == "accept":
        return "accepted"
    if row.answer == "decline":
        return "declined"
    return "waiting"


def case_version(row: CaseRow, closed: bool) -> str:
    """Everything of the row a card shows that may change after it arrived."""
    parts = (
        case_state(row, closed),
        row.answer or "",
        row.answer_reason or "",
        row.answered_by or "",
        iso(row.answered_at),
        "unsent" if row.answer_unsent else "",
    )
    return "|".join(parts)


@dataclass
class Card:
    """One case of the list: its row, its state and its rendered card."""

    row: CaseRow
    state: str
    html: str  # rendered by the autoescaping templates: shown as it is

    @property
    def case_id(self) -> str:
        return self.row.case_id


class CardRenderer:
    def __init__(
        self,
        store: HospitalStore,
        settings: HospitalSettings,
        templates: Jinja2Templates,
        hospital_id: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.hospital_id = hospital_id  # whose ETA a case's card shows
        self._case = templates.get_template("_case.html")
        self._unreadable = templates.get_template("_case_unreadable.html")

    def read(self, row: CaseRow) -> CaseView | None:
        """What can be read of the case, or None when nothing can (logged: no content)."""
        try:
            view = read_case(row.case_id, self.store.bundle_of(row))
        except Exception as exc:
            log.warning("case of event %s unreadable: %s", row.event_id, type(exc).__name__)
            return None
        if view.call_at is None and view.contact_at is None and not row.sealed_at_suspect:
            view.call_at = from_unix(row.sealed_at)
        return view

    def card(
        self, row: CaseRow, closure: Closure | None, now: datetime, csrf: str, detail: bool
    ) -> Card:
        """The case's card: rendered whole, or as a card saying it cannot be shown."""
        view = self.read(row)
        sender: Sender = sender_of(view, row.device_id, row.sender_department)
        state = case_state(row, closure is not None)
        ctx: dict[str, Any] = {
            "row": row,
            "v": view,
            "sender": sender,
            "sealed": from_unix(row.sealed_at),
            "closure": closure,
            "state": state,
            "version": case_version(row, closure is not None),
            "now": now,
            "started": _plausible_start(view.started_at(), now) if view else None,
            "since": lambda v: _since(v.started_at(), now),
            "eta_left": lambda at: _left(at, now),
            "hospital_id": self.hospital_id,
            "csrf": csrf,
            "detail": detail,
        }
        html = None
        if view is not None:
            try:
                html = self._case.render(ctx)
            except Exception as exc:  # one odd field never takes the list down
                log.warning("case of event %s not shown: %s", row.event_id, type(exc).__name__)
        if html is None:
            try:
                html = self._unreadable.render(ctx)
            except Exception:  # the row itself is odd: the least that can be said
                html = (
                    f'<article class="case unreadable" data-case-id="{escape(row.case_id)}"'
                    f' data-version="{escape(ctx["version"])}">'
                    "<p>この事案は表示できません。送信元の消防本部に電話で確認してください。"
                    "</p></article>"
                )
        return Card(row, state, html)

    def cards(
        self, rows: list[CaseRow], now: datetime, csrf: str, detail: bool
    ) -> tuple[list[Card], dict[str, Closure]]:
        closures = self.store.closures([r.case_id for r in rows])
        out = [self.card(r, closures.get(r.case_id), now, csrf, detail) for r in rows]
        return out, closures

    def recent_rejections(self, now: datetime) -> list[Rejection]:
        """Refusals of the retention window, newest first."""
        since = now - timedelta(seconds=self.settings.retention_seconds)
        rows = [r for r in self.store.rejections() if aware(r.at) >= since]
        return sorted(rows, key=lambda r: aware(r.at), reverse=True)
