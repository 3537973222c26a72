"""Numbered events per recipient (hospital or device): append, read after a number, notify."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text, tuple_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

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


def case_event_data(envelope: bytes | None, payload: dict[str, Any]) -> dict[str, Any]:
    """The case event as streamed: the stored metadata plus the case's envelope (its JSON
    text), or ``purged`` when the envelope is gone."""
    data = dict(payload)
    if envelope is None:
        data["envelope"] = None
        data["purged"] = True
    else:
        data["envelope"] = envelope_to_text(envelope)
    return data


_AFTER = (
    sa_select(
        col(Event.recipient), col(Event.seq), col(Event.kind), col(Event.case_id),
        col(Event.payload),
    )
    .where(col(Event.recipient) == bindparam("recipient"), col(Event.seq) > bindparam("after"))
    .order_by(col(Event.seq))
    .limit(bindparam("limit"))
)  # fmt: skip
_NUMBERED = sa_select(
    col(Event.recipient), col(Event.seq), col(Event.kind), col(Event.case_id), col(Event.payload)
).where(tuple_(col(Event.recipient), col(Event.seq)).in_(bindparam("wanted", expanding=True)))
_ENVELOPES = sa_select(col(Case.id), col(Case.envelope)).where(
    col(Case.id).in_(bindparam("ids", expanding=True))
)


def _envelopes(session: Session, rows: list[Any]) -> dict[str, bytes | None]:
    """The envelopes of the case events among ``rows`` (recipient, seq, kind, case_id,
    payload), read in one statement: {case id: envelope (None when purged)}; a case
    not found (deleted) is left out."""
    ids = sorted({str(case_id) for _, _, kind, case_id, _ in rows if kind == "case"})
    envelopes: dict[str, bytes | None] = {}
    if ids:
        conn = session.connection()
        envelopes = {str(i): e for i, e in conn.execute(_ENVELOPES, {"ids": ids})}
    return envelopes


def _data(
    shared: dict[tuple[str, str], dict[str, Any]],
    envelopes: dict[str, bytes | None],
    kind: str,
    case_id: str,
    payload: str,
) -> dict[str, Any] | None:
    """An event's data, one dict per (case, payload) shared by its recipients; None for a
    case event whose case is gone."""
    key = (case_id, payload)
    data = shared.get(key)
    if data is None:
        data = json.loads(payload)
        if kind == "case":
            if case_id not in envelopes:
                return None
            data = case_event_data(envelopes[case_id], data)
        shared[key] = data
    return data


def events_after(
    session: Session, *, recipient: str, after: int, limit: int = 200
) -> list[PendingEvent]:
    """The recipient's events numbered above ``after``, oldest first (case events carry
    their envelope, or ``purged``; a case event whose case is gone, only its metadata).
    Two statements: the events, then their cases' envelopes."""
    rows = list(
        session.connection().execute(
            _AFTER, {"recipient": recipient, "after": after, "limit": limit}
        )
    )
    shared: dict[tuple[str, str], dict[str, Any]] = {}
    envelopes = _envelopes(session, rows)
    out = []
    for rec, seq, kind, case_id, payload in rows:
        data = _data(shared, envelopes, kind, str(case_id), payload)
        out.append(PendingEvent(rec, seq, kind, json.loads(payload) if data is None else data))
    return out


def events_with_data(session: Session, events: list[PendingEvent]) -> list[PendingEvent]:
    """``events`` with the data a notification could not carry (a case event whose
    envelope is over PostgreSQL's 8,000-byte payload limit, as every v2 case is), read
    once for the process in two statements whatever their number (the events, then their
    cases' envelopes), one data dict per case shared by its recipients (its JSON text is
    then encoded once, ``SHARED``). An event not found (its case deleted) keeps ``data``
    None: its streams re-read the database."""
    wanted = [(ev.recipient, ev.seq) for ev in events if ev.data is None]
    if not wanted:
        return events
    rows = list(session.connection().execute(_NUMBERED, {"wanted": wanted}))
    shared: dict[tuple[str, str], dict[str, Any]] = {}
    envelopes = _envelopes(session, rows)
    found: dict[tuple[str, int], dict[str, Any] | None] = {
        (rec, seq): _data(shared, envelopes, kind, str(case_id), payload)
        for rec, seq, kind, case_id, payload in rows
    }
    return [
        ev if ev.data is not None else replace(ev, data=found.get((ev.recipient, ev.seq)))
        for ev in events
    ]
