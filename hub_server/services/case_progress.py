"""After a case is stored: where it stands, acks, answers, the chosen destination.

Each step is one transaction (the change, its events and the audit row), then the push.
"""

from __future__ import annotations

from sqlmodel import Session

from hub_server import crud
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.state import HubState
from hub_server.schemas import (
    AckPublic,
    AnswerCreate,
    AnswerPublic,
    CaseRecipientStatus,
    CaseStatus,
    DestinationPublic,
)

__all__ = ["acknowledge_case", "answer_case", "case_status", "confirm_destination"]


def case_status(session: Session, *, case_id: str, device_id: str) -> CaseStatus:
    """Where the device's case stands (acks and answers per hospital)."""
    case = crud.device_case(session, case_id=case_id, device_id=device_id)
    rows = crud.case_recipients(session, case_id=case_id)
    return CaseStatus(
        case_id=case.id,
        created_at=case.created_at,
        destination_hospital_id=case.destination_hospital_id,
        purged=case.purged_at is not None,
        recipients=[
            CaseRecipientStatus(
                hospital_id=r.hospital_id,
                acked=r.acked_at is not None,
                answer=r.answer,
                answered_at=r.answered_at,
            )
            for r in rows
        ],
    )


def acknowledge_case(session: Session, *, case_id: str, hospital_id: str) -> AckPublic:
    """The hospital has the case (once every recipient has it, it may be purged later)."""
    row = crud.mark_acked(session, case_id=case_id, hospital_id=hospital_id, now=utcnow())
    session.commit()
    assert row.acked_at is not None
    return AckPublic(case_id=case_id, hospital_id=hospital_id, acked_at=row.acked_at)


def answer_case(
    hub: HubState, session: Session, caller: crud.Principal, *, case_id: str, body: AnswerCreate
) -> AnswerPublic:
    """Accept or decline; the sending device sees it live on its stream."""
    now = utcnow()
    _, events = crud.answer_case(
        session,
        case_id=case_id,
        hospital_id=caller.id,
        answer=body.answer,
        reason=body.reason,
        now=now,
        origin=hub.bus.origin,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="case_answered",
        subject=f"case:{case_id}",
        details={"answer": body.answer},
        now=now,
    )
    session.commit()
    hub.bus.publish(events)
    return AnswerPublic(case_id=case_id, hospital_id=caller.id, answer=body.answer, answered_at=now)


def confirm_destination(
    hub: HubState, session: Session, caller: crud.Principal, *, case_id: str, hospital_id: str
) -> DestinationPublic:
    """The device confirms where the patient goes; every recipient is told."""
    now = utcnow()
    _, events = crud.set_destination(
        session,
        case_id=case_id,
        device_id=caller.id,
        hospital_id=hospital_id,
        now=now,
        origin=hub.bus.origin,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="destination_confirmed",
        subject=f"case:{case_id}",
        details={"hospital_id": hospital_id},
        now=now,
    )
    session.commit()
    hub.bus.publish(events)
    return DestinationPublic(case_id=case_id, hospital_id=hospital_id)
