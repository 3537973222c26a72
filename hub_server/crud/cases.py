"""Sealed cases, per-recipient events, answers, idempotency records, retention purge."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from hub_server.core.errors import HubError
from hub_server.core.events import PendingEvent, notification_payload
from hub_server.models import Case, CaseRecipient, Device, Event, Hospital, IdempotencyRecord

__all__ = [
    "answer_case",
    "begin_idempotent",
    "case_event_data",
    "case_exists",
    "case_meta",
    "check_recipients",
    "claim_idempotent",
    "create_case",
    "events_after",
    "finish_idempotent",
    "mark_acked",
    "notify",
    "purge_cases",
    "set_destination",
    "unknown_recipients",
]


_HOSPITALS: Table = Hospital.__table__  # type: ignore[attr-defined]
_CASES: Table = Case.__table__  # type: ignore[attr-defined]
_EVENTS: Table = Event.__table__  # type: ignore[attr-defined]
_RECIPIENTS: Table = CaseRecipient.__table__  # type: ignore[attr-defined]
_IDEMPOTENCY: Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
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


def _append_event(
    session: Session,
    *,
    recipient: str,
    kind: str,
    case_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> PendingEvent:
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


_NOTIFY = text("SELECT pg_notify('kyukyu_events', :p)")


def notify(session: Session | Connection, events: list[PendingEvent], origin: str = "") -> None:
    """On PostgreSQL, wake the other hub processes when this transaction commits."""
    conn = session.connection() if isinstance(session, Session) else session
    if events and conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"p": notification_payload(events, origin)})


def case_event_data(case: Case, payload: dict[str, Any]) -> dict[str, Any]:
    """The case event as streamed: the stored metadata plus the envelope (standard base64)."""
    data = dict(payload)
    if case.envelope is None:
        data["envelope"] = None
        data["purged"] = True
    else:
        data["envelope"] = base64.b64encode(case.envelope).decode("ascii")
    return data


def check_recipients(recipients: list[str], max_recipients: int) -> list[str]:
    """The recipients sorted (row locks are always taken in the same order); 422 unless
    1 to ``max_recipients`` distinct ids."""
    unique = sorted(set(recipients))
    if not unique or len(unique) != len(recipients) or len(unique) > max_recipients:
        raise HubError(
            422,
            "bad_recipients",
            f"recipients must be 1 to {max_recipients} distinct hospital ids",
            "送信先病院の指定が正しくありません。",
        )
    return unique


def unknown_recipients(missing: list[str]) -> HubError:
    return HubError(
        422,
        "unknown_recipient",
        f"not registered hospitals: {', '.join(missing)}",
        "登録されていない病院が送信先に含まれています。",
    )


def case_exists() -> HubError:
    return HubError(
        409,
        "case_exists",
        "a case with this id already exists (use the same Idempotency-Key to retry)",
        "この事案は既に送信されています。",
    )


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
    max_recipients: int,
    now: datetime,
    origin: str = "",
) -> tuple[Case, list[PendingEvent]]:
    """Store the ciphertext and append one numbered event per recipient hospital."""
    unique = check_recipients(recipients, max_recipients)
    # Core statements on the tables, built once: this is the hot path of the hub.
    # Lock the recipients' rows in id order (FOR UPDATE; a no-op on SQLite, which locks the
    # whole database): concurrent cases to overlapping hospitals then never deadlock.
    known = {row[0] for row in conn.execute(_LOCK_RECIPIENTS, {"ids": unique})}
    missing = [r for r in unique if r not in known]
    if missing:
        raise unknown_recipients(missing)
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
        raise case_exists() from None
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
    data = case_event_data(case, meta)
    events = [PendingEvent(f"hospital:{h}", seqs[h], "case", data) for h in unique]
    notify(conn, events, origin)
    return case, events


def events_after(
    session: Session, *, recipient: str, after: int, limit: int = 200
) -> list[PendingEvent]:
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


def _recipient_row(session: Session, *, case_id: str, hospital_id: str) -> CaseRecipient:
    row = session.get(CaseRecipient, (case_id, hospital_id))
    if row is None:
        # Same answer whether the case exists or not: a hospital learns nothing of others' cases.
        raise HubError(404, "unknown_case", "no such case for this hospital")
    return row


def mark_acked(session: Session, *, case_id: str, hospital_id: str, now: datetime) -> CaseRecipient:
    row = _recipient_row(session, case_id=case_id, hospital_id=hospital_id)
    if row.acked_at is None:
        row.acked_at = now
        session.add(row)
    return row


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
    ev = _append_event(
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
    origin: str = "",
) -> tuple[Case, list[PendingEvent]]:
    case = session.get(Case, case_id)
    if case is None or case.device_id != device_id:
        raise HubError(404, "unknown_case", "no such case for this device")
    if session.get(CaseRecipient, (case_id, hospital_id)) is None:
        raise HubError(
            422,
            "not_a_recipient",
            "the destination must be one of the case's recipients",
            "搬送先は送信先の病院から選んでください。",
        )
    case.destination_hospital_id, case.destination_at = hospital_id, now
    session.add(case)
    recipients = session.exec(
        select(CaseRecipient.hospital_id)
        .where(CaseRecipient.case_id == case_id)
        .order_by(col(CaseRecipient.hospital_id))
    ).all()
    events = [
        _append_event(
            session,
            recipient=f"hospital:{rid}",
            kind="destination",
            case_id=case_id,
            payload={"type": "destination", "case_id": case_id, "chosen": rid == hospital_id},
            now=now,
        )
        for rid in recipients
    ]
    notify(session, events, origin)
    return case, events


def begin_idempotent(
    session: Session,
    *,
    owner: str,
    key: str,
    request_hash: str,
    now: datetime,
    conn: Connection | None = None,
) -> IdempotencyRecord | None:
    """Claim ``key``: None if this request now owns it, else the existing record.

    The claim must be visible to other requests at once: it is written on ``conn`` (a
    bookkeeping autocommit connection) or committed on ``session``.
    """
    row = {
        "owner": owner,
        "key": key,
        "request_hash": request_hash,
        "status": "in_progress",
        "created_at": now,
    }
    try:
        if conn is not None:
            conn.execute(_IDEMPOTENCY.insert(), row)
        else:
            session.connection().execute(_IDEMPOTENCY.insert(), row)
            session.commit()
        return None
    except IntegrityError:
        session.rollback()
    existing = session.get(IdempotencyRecord, (owner, key))
    if existing is None:  # deleted in between (a failed attempt): let the caller retry
        raise HubError(409, "idempotency_conflict", "the request is being retried; try again")
    return existing


def claim_idempotent(
    conn: Connection,
    *,
    owner: str,
    key: str,
    request_hash: str,
    now: datetime,
    status: int,
    body: str,
) -> bool:
    """Store the final response of ``key`` inside the caller's transaction; False if the
    key exists (the transaction is then unusable on PostgreSQL: roll it back).

    The primary key is the claim: a concurrent request with the same key waits on it
    (PostgreSQL) or on the write lock (SQLite) and then sees the committed response;
    if this transaction rolls back, nothing of the claim is left.
    """
    try:
        conn.execute(
            _IDEMPOTENCY.insert(),
            {
                "owner": owner,
                "key": key,
                "request_hash": request_hash,
                "status": "done",
                "response_status": status,
                "response_body": body,
                "created_at": now,
            },
        )
    except IntegrityError:
        return False
    return True


def finish_idempotent(
    session: Session,
    *,
    owner: str,
    key: str,
    status: int | None,
    body: str | None,
    commit: bool = True,
) -> None:
    """Store the final response, or forget the key (``status=None``) after a failure.

    With ``commit=False`` it joins the caller's transaction (the case and its stored
    response then commit together).
    """
    t = _IDEMPOTENCY
    where = (t.c.owner == owner) & (t.c.key == key)
    if status is None:
        session.connection().execute(t.delete().where(where))
    else:
        session.connection().execute(
            t.update()
            .where(where)
            .values(status="done", response_status=status, response_body=body)
        )
    if commit:
        session.commit()


def purge_cases(
    session: Session,
    *,
    now: datetime,
    retention: timedelta,
    undelivered_retention: timedelta,
    idempotency_retention: timedelta = timedelta(days=1),
) -> int:
    """Drop the ciphertext of delivered cases older than ``retention`` (and of any case
    older than ``undelivered_retention``); return how many were purged."""
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
    session.execute(
        delete(IdempotencyRecord).where(
            col(IdempotencyRecord.created_at) < now - idempotency_retention
        )
    )
    return len(ids)
