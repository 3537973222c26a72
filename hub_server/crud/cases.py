"""Sealed cases and their recipients: store, acknowledge, answer, destination, purge."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub_server.core.errors import (
    CaseClosed,
    CaseExists,
    Conflict,
    InvalidInput,
    NotFound,
    UnknownRecipients,
)
from hub_server.core.events import PendingEvent
from hub_server.crud.events import append_event, notify
from hub_server.models import Case, CaseRecipient, Device, Event, Hospital

__all__ = [
    "answer_case",
    "case_meta",
    "case_recipients",
    "check_recipients",
    "close_case",
    "create_case",
    "device_case",
    "mark_acked",
    "purge_cases",
    "set_destination",
]


_HOSPITALS: Table = Hospital.__table__  # type: ignore[attr-defined]
_CASES: Table = Case.__table__  # type: ignore[attr-defined]
_EVENTS: Table = Event.__table__  # type: ignore[attr-defined]
_RECIPIENTS: Table = CaseRecipient.__table__  # type: ignore[attr-defined]
_LOCK_RECIPIENTS = (
    sa_select(_HOSPITALS.c.id)
    .where(_HOSPITALS.c.id.in_(bindparam("ids", expanding=True)), _HOSPITALS.c.revoked.is_(False))
    .order_by(_HOSPITALS.c.id)
    .with_for_update()
)
_NEXT_SEQS = (
    _HOSPITALS.update()
    .where(_HOSPITALS.c.id.in_(bindparam("ids", expanding=True)))
    .values(event_seq=_HOSPITALS.c.event_seq + 1)
    .returning(_HOSPITALS.c.id, _HOSPITALS.c.event_seq)
)


def check_recipients(recipients: list[str], max_recipients: int) -> list[str]:
    """The recipients sorted (row locks are always taken in the same order);
    ``InvalidInput`` unless 1 to ``max_recipients`` distinct ids."""
    unique = sorted(set(recipients))
    if not unique or len(unique) != len(recipients) or len(unique) > max_recipients:
        raise InvalidInput(
            "bad_recipients",
            f"recipients must be 1 to {max_recipients} distinct hospital ids",
            "送信先病院の指定が正しくありません。",
        )
    return unique


def case_meta(*, case_id: str, device: Device, now: datetime) -> dict[str, Any]:
    """The stored part of a case event (the envelope is added when streamed)."""
    return {
        "type": "case",
        "case_id": case_id,
        "device_id": device.id,
        "fire_department": device.fire_department,
        "created_at": now.isoformat(),
    }


def create_case(
    conn: Connection,
    *,
    device: Device,
    case_id: str,
    recipients: list[str],
    envelope: bytes,
    envelope_text: str,
    max_recipients: int,
    now: datetime,
    origin: str = "",
) -> tuple[Case, list[PendingEvent]]:
    """Store the ciphertext and append one numbered event per recipient hospital;
    ``envelope_text`` is its base64 text as received, carried by the events unchanged."""
    unique = check_recipients(recipients, max_recipients)
    # Core statements on the tables, built once: this is the hot path of the hub.
    # Lock the recipients' rows in id order (FOR UPDATE; a no-op on SQLite, which locks the
    # whole database): concurrent cases to overlapping hospitals then never deadlock.
    known = {row[0] for row in conn.execute(_LOCK_RECIPIENTS, {"ids": unique})}
    missing = [r for r in unique if r not in known]
    if missing:
        raise UnknownRecipients(missing)
    case = Case(
        id=case_id,
        device_id=device.id,
        envelope=envelope,
        envelope_size=len(envelope),
        created_at=now,
    )
    # The primary key is the check (no extra round trip); the caller rolls back on error.
    try:
        conn.execute(
            _CASES.insert(),
            {
                "id": case_id,
                "device_id": device.id,
                "envelope": envelope,
                "envelope_size": len(envelope),
                "created_at": now,
            },
        )
    except IntegrityError:
        raise CaseExists from None
    meta = case_meta(case_id=case_id, device=device, now=now)
    payload = json.dumps(meta, separators=(",", ":"), ensure_ascii=False)
    seqs = {str(r[0]): int(r[1]) for r in conn.execute(_NEXT_SEQS, {"ids": unique})}
    conn.execute(
        _EVENTS.insert(),
        [
            {
                "recipient": f"hospital:{h}",
                "seq": seqs[h],
                "kind": "case",
                "case_id": case_id,
                "payload": payload,
                "created_at": now,
            }
            for h in unique
        ],
    )
    conn.execute(
        _RECIPIENTS.insert(),
        [{"case_id": case_id, "hospital_id": h, "event_seq": seqs[h]} for h in unique],
    )
    data = {**meta, "envelope": envelope_text}
    events = [PendingEvent(f"hospital:{h}", seqs[h], "case", data) for h in unique]
    notify(conn, events, origin)
    return case, events


def device_case(session: Session, *, case_id: str, device_id: str) -> Case:
    """The case if ``device_id`` sent it; ``NotFound`` otherwise (whether or not it exists)."""
    case = session.get(Case, case_id)
    if case is None or case.device_id != device_id:
        raise NotFound("unknown_case", "no such case for this device")
    return case


def case_recipients(session: Session, *, case_id: str) -> Sequence[CaseRecipient]:
    """The case's recipient rows (acks and answers), by hospital id."""
    return session.exec(
        select(CaseRecipient)
        .where(CaseRecipient.case_id == case_id)
        .order_by(col(CaseRecipient.hospital_id))
    ).all()


def _recipient_row(session: Session, *, case_id: str, hospital_id: str) -> CaseRecipient:
    row = session.get(CaseRecipient, (case_id, hospital_id))
    if row is None:
        # Same answer whether the case exists or not: a hospital learns nothing of others' cases.
        raise NotFound("unknown_case", "no such case for this hospital")
    return row


def mark_acked(
    session: Session, *, case_id: str, hospital_id: str, now: datetime, origin: str = ""
) -> tuple[CaseRecipient, list[PendingEvent]]:
    """The hospital has the case; the first time, the sending device is told (``received``:
    病院に到着)."""
    row = _recipient_row(session, case_id=case_id, hospital_id=hospital_id)
    if row.acked_at is not None:
        return row, []
    row.acked_at = now
    session.add(row)
    events = []
    if row.answered_at is None:  # an answer already told the device more
        case = session.get(Case, case_id)
        assert case is not None
        events.append(
            append_event(
                session,
                recipient=f"device:{case.device_id}",
                kind="received",
                case_id=case_id,
                payload={
                    "type": "received",
                    "case_id": case_id,
                    "hospital_id": hospital_id,
                    "received_at": now.isoformat(),
                },
                now=now,
            )
        )
        notify(session, events, origin)
    return row, events


def closed(session: Session, case_id: str) -> bool:
    """Whether a closure (中止 / 不搬送) of the case was relayed."""
    row = session.exec(
        select(Event.id).where(Event.case_id == case_id, Event.kind == "closure").limit(1)
    ).first()
    return row is not None


def answer_case(
    session: Session,
    *,
    case_id: str,
    hospital_id: str,
    answer: str,
    reason: str | None,
    now: datetime,
    origin: str = "",
) -> tuple[CaseRecipient, list[PendingEvent]]:
    """Record accept/decline and push it to the sending device's stream."""
    row = _recipient_row(session, case_id=case_id, hospital_id=hospital_id)
    case = session.get(Case, case_id)
    assert case is not None
    row.answer, row.answer_reason, row.answered_at = answer, reason, now
    if row.acked_at is None:
        row.acked_at = now  # answering implies it was received
    session.add(row)
    ev = append_event(
        session,
        recipient=f"device:{case.device_id}",
        kind="answer",
        case_id=case_id,
        payload={
            "type": "answer",
            "case_id": case_id,
            "hospital_id": hospital_id,
            "answer": answer,
            "reason": reason,
            "answered_at": now.isoformat(),
        },
        now=now,
    )
    notify(session, [ev], origin)
    return row, [ev]


def set_destination(
    session: Session,
    *,
    case_id: str,
    device_id: str,
    hospital_id: str,
    now: datetime,
    via: str = "answer",
    origin: str = "",
) -> tuple[Case, list[PendingEvent]]:
    """搬送先決定. ``via="answer"`` only for a hospital that answered accept (409
    ``not_accepted`` otherwise); ``via="phone"``: the crew confirmed by phone."""
    case = device_case(session, case_id=case_id, device_id=device_id)
    chosen = session.get(CaseRecipient, (case_id, hospital_id))
    if chosen is None:
        raise InvalidInput(
            "not_a_recipient",
            "the destination must be one of the case's recipients",
            "搬送先は送信先の病院から選んでください。",
        )
    if closed(session, case_id):
        raise CaseClosed()
    if via == "answer" and chosen.answer != "accept":
        raise Conflict(
            "not_accepted",
            "this hospital has not answered accept: confirm by phone (via=phone)",
            "この病院は受入可と回答していません。電話で受入を確認してから「電話で受入確認済み」で決定してください。",
        )
    case.destination_hospital_id, case.destination_at = hospital_id, now
    session.add(case)
    recipients = session.exec(
        select(CaseRecipient.hospital_id)
        .where(CaseRecipient.case_id == case_id)
        .order_by(col(CaseRecipient.hospital_id))
    ).all()
    events = [
        append_event(
            session,
            recipient=f"hospital:{rid}",
            kind="destination",
            case_id=case_id,
            payload={
                "type": "destination",
                "case_id": case_id,
                "chosen": rid == hospital_id,
                "via": via,
            },
            now=now,
        )
        for rid in recipients
    ]
    notify(session, events, origin)
    return case, events


def close_case(
    session: Session,
    *,
    case_id: str,
    device_id: str,
    recipients: list[str],
    envelope: str,
    now: datetime,
    origin: str = "",
    subset: bool = False,
) -> list[PendingEvent]:
    """中止 / 不搬送: relay the sealed closure to its recipients (once; 409 ``case_closed``
    after). ``recipients`` must be the case's recipients; with ``subset`` (the platform
    takes v2 only: a recipient without a hybrid key cannot be sealed to) some of them,
    the caller having checked who is left out."""
    device_case(session, case_id=case_id, device_id=device_id)
    known = sorted(r.hospital_id for r in case_recipients(session, case_id=case_id))
    chosen = sorted(set(recipients))
    fits = set(chosen) <= set(known) if subset else chosen == known
    if not fits or len(recipients) != len(chosen):
        raise InvalidInput(
            "not_the_recipients",
            "a closure goes to exactly the case's recipients",
            "中止の通知先が事案の送信先と一致しません。",
        )
    if closed(session, case_id):
        raise CaseClosed()
    events = [
        append_event(
            session,
            recipient=f"hospital:{rid}",
            kind="closure",
            case_id=case_id,
            payload={
                "type": "closure",
                "case_id": case_id,
                "envelope": envelope,
                "closed_at": now.isoformat(),
            },
            now=now,
        )
        for rid in chosen
    ]
    notify(session, events, origin)
    return events


def left_out_with_hybrid_key(session: Session, *, case_id: str, recipients: list[str]) -> list[str]:
    """The case's recipients missing from ``recipients`` that have a hybrid (X-Wing) key:
    a closure sealed v2 could have reached them."""
    known = {r.hospital_id for r in case_recipients(session, case_id=case_id)}
    left_out = sorted(known - set(recipients))
    if not left_out:
        return []
    rows = session.exec(
        select(Hospital.id).where(
            col(Hospital.id).in_(left_out), col(Hospital.xwing_public_key).is_not(None)
        )
    ).all()
    return sorted(rows)


def purge_cases(
    session: Session,
    *,
    now: datetime,
    retention: timedelta,
    undelivered_retention: timedelta,
) -> int:
    """Drop the ciphertext of delivered cases older than ``retention`` (and of any case
    older than ``undelivered_retention``), and of closures older than ``retention``;
    return how many cases were purged."""
    unacked = (
        select(CaseRecipient.case_id)
        .where(col(CaseRecipient.acked_at).is_(None))
        .group_by(col(CaseRecipient.case_id))
    )
    delivered_old = select(Case.id).where(
        col(Case.purged_at).is_(None),
        col(Case.created_at) < now - retention,
        col(Case.id).not_in(unacked),
    )
    expired = select(Case.id).where(
        col(Case.purged_at).is_(None), col(Case.created_at) < now - undelivered_retention
    )
    ids = set(session.exec(delivered_old).all()) | set(session.exec(expired).all())
    if ids:
        session.execute(
            update(Case).where(col(Case.id).in_(ids)).values(envelope=None, purged_at=now)
        )
    # A closure's sealed document lives in its events: dropped after the same retention.
    old_closures = session.exec(
        select(Event).where(
            Event.kind == "closure",
            col(Event.created_at) < now - retention,
            col(Event.payload).not_like('%"purged":true%'),
        )
    ).all()
    for ev in old_closures:
        payload = json.loads(ev.payload)
        payload.update(envelope=None, purged=True)
        ev.payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        session.add(ev)
    return len(ids)
