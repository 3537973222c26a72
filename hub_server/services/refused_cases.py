"""Cases hospitals refused: their reports (code only), kept and audited; operators list them.

A hospital that cannot open, read or store a case it was sent reports it once
(``POST /v1/hospitals/me/refused-cases``). The hub takes nothing on trust: the
event must be one of its own for that hospital (a ``case`` or ``closure`` event),
the case and the posting device are its own record of it, and a device the
hospital names must be that one. A report is kept once per hospital and event; a
repeated report answers with the one kept (the hospital retries when an answer
was lost).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import Conflict, NotFound
from hub_server.models import Case, Event, RefusedCaseReport
from hub_server.schemas import RefusedCaseCreate, RefusedCasePage, RefusedCasePublic

__all__ = ["list_reports", "report_refused_case"]

_REPORTED_KINDS = ("case", "closure")


def _public(row: RefusedCaseReport) -> RefusedCasePublic:
    assert row.id is not None
    return RefusedCasePublic(
        id=row.id,
        hospital_id=row.hospital_id,
        event_id=row.event_seq,
        case_id=row.case_id,
        device_id=row.device_id,
        code=row.code,
        reported_at=row.reported_at,
    )


def _kept(session: Session, hospital_id: str, event_id: int) -> RefusedCaseReport | None:
    return session.exec(
        select(RefusedCaseReport).where(
            RefusedCaseReport.hospital_id == hospital_id,
            RefusedCaseReport.event_seq == event_id,
        )
    ).first()


def report_refused_case(
    session: Session, *, hospital_id: str, actor: str, body: RefusedCaseCreate
) -> tuple[RefusedCasePublic, bool]:
    """Keep and audit one report; returns it and whether it is new."""
    kept = _kept(session, hospital_id, body.event_id)
    if kept is None:
        event = session.exec(
            select(Event).where(
                Event.recipient == f"hospital:{hospital_id}",
                Event.seq == body.event_id,
                col(Event.kind).in_(_REPORTED_KINDS),
            )
        ).first()
        if event is None:
            raise NotFound(
                "unknown_event",
                "this hospital was sent no case or closure with that event number",
                "その番号の事案はこの病院に送信されていません。",
            )
        case = session.get(Case, event.case_id)
        device_id = case.device_id if case is not None else None
        if body.device_id is not None and body.device_id != device_id:
            raise Conflict(
                "device_mismatch",
                "the case of that event was posted by another device",
                "その事案を送信した端末が報告と異なります。",
            )
        now = utcnow()
        row = RefusedCaseReport(
            hospital_id=hospital_id,
            event_seq=body.event_id,
            case_id=event.case_id,
            device_id=device_id,
            code=body.code,
            reported_at=now,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:  # the same report, at the same moment, from another request
            session.rollback()
            kept = _kept(session, hospital_id, body.event_id)
            assert kept is not None
            return _public(kept), False
        append_audit(
            session,
            actor=actor,
            action="case_refused_reported",
            subject=f"case:{event.case_id}",
            details={
                "hospital_id": hospital_id,
                "event_id": body.event_id,
                "device_id": device_id,
                "code": body.code,
            },
            now=now,
        )
        session.commit()
        return _public(row), True
    if body.device_id is not None and body.device_id != kept.device_id:
        raise Conflict(
            "device_mismatch",
            "the case of that event was posted by another device",
            "その事案を送信した端末が報告と異なります。",
        )
    return _public(kept), False


def list_reports(
    session: Session, *, after: int, limit: int, hospital_id: str | None = None
) -> RefusedCasePage:
    """Reports oldest first, after report id ``after`` (optionally of one hospital)."""
    q = select(RefusedCaseReport).where(col(RefusedCaseReport.id) > after)
    if hospital_id is not None:
        q = q.where(RefusedCaseReport.hospital_id == hospital_id)
    rows = session.exec(q.order_by(col(RefusedCaseReport.id)).limit(limit)).all()
    return RefusedCasePage(reports=[_public(r) for r in rows])
