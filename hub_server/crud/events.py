"""Numbered events per recipient (hospital or device): append, read after a number, notify."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from hub_server.core.events import PendingEvent, notification_payload
from hub_server.models import Case, Device, Event, Hospital
from sync.envelope import envelope_to_text

__all__ = ["append_event", "case_event_data", "events_after", "events_with_data", "notify"]

_NOTIFY = text("SELECT pg_notify('kyukyu_events', :p)")


def _next_seq(session: Session, recipient: str) -> int:
    kind, _, ident = recipient.partition(":")
    table: type[Hospital] | type[Device] = Hospital if kind == "hospital" else Device
    result = session.execute(
        update(table)
        .where(col(table.id) == ident)
        .values(event_seq=table.event_seq + 1)
        .returning(col(table.event_seq))
    )
    return int(result.scalar_one())


def append_event(
    session: Session,
    *,
    recipient: str,
    kind: str,
    case_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> PendingEvent:
    """Append the recipient's next numbered event (``recipient`` is ``hospital:<id>`` or
    ``device:<id>``); the caller commits and publishes it."""
    seq = _next_seq(session, recipient)
    session.add(
        Event(
            recipient=recipient,
            seq=seq,
            kind=kind,
            case_id=case_id,
            payload=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            created_at=now,
        )
    )
    return PendingEvent(recipient, seq, kind, payload)


def notify(session: Session | Connection, events: list[PendingEvent], origin: str = "") -> None:
    """On PostgreSQL, wake the other hub processes when this transaction commits."""
    conn = session.connection() if isinstance(session, Session) else session
    if events and conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"p": notification_payload(events, origin)})


def case_event_data(case: Case, payload: dict[str, Any]) -> dict[str, Any]:
    """The case event as streamed: the stored metadata plus the envelope (its JSON text)."""
    data = dict(payload)
    if case.envelope is None:
        data["envelope"] = None
        data["purged"] = True
    else:
        data["envelope"] = envelope_to_text(case.envelope)
    return data


def events_after(
    session: Session, *, recipient: str, after: int, limit: int = 200
) -> list[PendingEvent]:
    """The recipient's events numbered above ``after``, oldest first (case events carry
    their envelope, or ``purged``)."""
    rows = session.exec(
        select(Event)
        .where(Event.recipient == recipient, col(Event.seq) > after)
        .order_by(col(Event.seq))
        .limit(limit)
    ).all()
    out = []
    cases: dict[str, Case | None] = {}
    for row in rows:
        data = json.loads(row.payload)
        if row.kind == "case":
            if row.case_id not in cases:
                cases[row.case_id] = session.get(Case, row.case_id)
            case = cases[row.case_id]
            if case is not None:
                data = case_event_data(case, data)
        out.append(PendingEvent(row.recipient, row.seq, row.kind, data))
    return out


def events_with_data(session: Session, events: list[PendingEvent]) -> list[PendingEvent]:
    """``events`` with the data a notification could not carry (a case event whose
    envelope is over PostgreSQL's 8,000-byte payload limit, as every v2 case is), read
    once for the process in one statement, one data dict per case shared by its
    recipients (its JSON text is then encoded once, ``SHARED``). An event not found
    (its case deleted) keeps ``data`` None: its streams re-read the database."""
    wanted = [ev for ev in events if ev.data is None]
    if not wanted:
        return events
    rows = session.execute(
        sa_select(
            col(Event.recipient),
            col(Event.seq),
            col(Event.kind),
            col(Event.case_id),
            col(Event.payload),
            Case,
        )
        .join(Case, col(Case.id) == col(Event.case_id), isouter=True)
        .where(
            or_(
                *(
                    and_(col(Event.recipient) == ev.recipient, col(Event.seq) == ev.seq)
                    for ev in wanted
                )
            )
        )
    ).all()
    shared: dict[tuple[str, str], dict[str, Any]] = {}
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for recipient, seq, kind, case_id, payload, case in rows:
        key = (str(case_id), payload)
        if key not in shared:
            data = json.loads(payload)
            if kind == "case":
                if case is None:
                    continue
                data = case_event_data(case, data)
            shared[key] = data
        found[(recipient, seq)] = shared[key]
    return [
        ev if ev.data is not None else replace(ev, data=found.get((ev.recipient, ev.seq)))
        for ev in events
    ]
