"""After a case is stored: where it stands, acks, answers, the chosen destination, 中止.

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
    ClosureCreate,
    ClosurePublic,
    DestinationPublic,
)
from hub_server.services.sealed_check import check_sealed, version_refused

__all__ = ["acknowledge_case", "answer_case", "case_status", "close_case", "confirm_destination"]


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


def acknowledge_case(
    hub: HubState, session: Session, *, case_id: str, hospital_id: str
) -> AckPublic:
    """The hospital has the case (once every recipient has it, it may be purged later);
    the sending device is told the first time (``received``)."""
    row, events = crud.mark_acked(
        session, case_id=case_id, hospital_id=hospital_id, now=utcnow(), origin=hub.bus.origin
    )
    session.commit()
    hub.bus.publish(events)
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
    hub: HubState,
    session: Session,
    caller: crud.Principal,
    *,
    case_id: str,
    hospital_id: str,
    via: str = "answer",
) -> DestinationPublic:
    """The device confirms where the patient goes; every recipient is told.

    ``via="answer"``: refused (409 ``not_accepted``) unless that hospital answered accept;
    ``via="phone"``: the crew confirmed the acceptance by phone (audited as such)."""
    now = utcnow()
    _, events = crud.set_destination(
        session,
        case_id=case_id,
        device_id=caller.id,
        hospital_id=hospital_id,
        via=via,
        now=now,
        origin=hub.bus.origin,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="destination_confirmed",
        subject=f"case:{case_id}",
        details={"hospital_id": hospital_id, "via": via},
        now=now,
    )
    session.commit()
    hub.bus.publish(events)
    return DestinationPublic(case_id=case_id, hospital_id=hospital_id, via=via)


def close_case(
    hub: HubState, session: Session, caller: crud.Principal, *, case_id: str, body: ClosureCreate
) -> ClosurePublic:
    """中止 / 不搬送: the sealed closure (reason inside, never read here) goes to every
    recipient of the case as a ``closure`` event; audited without the reason.

    ``require_pq``: like a case, the closure must be sealed v2 (422
    ``envelope_version_refused``: the reason is patient data). Its recipients may then be
    fewer than the case's: a recipient without a hybrid key cannot be sealed to (the crew
    phones it). Leaving out one that has a hybrid key is the sign of a stale directory on
    the device and is refused the same way, so the device seals it again from the current
    one."""
    require_pq = hub.settings.require_pq
    check_sealed(
        body.envelope,
        case_id,
        body.recipients,
        caller,
        opaque_allowed=hub.settings.accepts_opaque_envelopes,
        require_pq=require_pq,
    )
    if require_pq:
        crud.device_case(session, case_id=case_id, device_id=caller.id)  # 404 first
        if crud.left_out_with_hybrid_key(session, case_id=case_id, recipients=body.recipients):
            raise version_refused(
                "the closure leaves out a recipient of the case that has a hybrid key"
            )
    now = utcnow()
    events = crud.close_case(
        session,
        case_id=case_id,
        device_id=caller.id,
        recipients=body.recipients,
        envelope=body.envelope,
        now=now,
        origin=hub.bus.origin,
        subset=require_pq,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="case_closed",
        subject=f"case:{case_id}",
        details={"recipients": len(events)},
        now=now,
    )
    session.commit()
    hub.bus.publish(events)
    return ClosurePublic(case_id=case_id, recipients=sorted(body.recipients), closed_at=now)
