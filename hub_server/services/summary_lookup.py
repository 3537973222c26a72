"""The マイナ救急 step: a single-use challenge, then the emergency summary look-up.

The hub verifies the patient's certificate itself and, for PIN proof, the card's
signature over the hub's own single-use challenge. Every look-up, including a
refused consent and a rejected certificate, is audited (with a pseudonymous
patient reference, never the certificate subject).
"""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session

from hub_server import crud
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import HubError, InvalidInput
from hub_server.core.state import HubState
from hub_server.models import Device
from hub_server.schemas import SummaryRequest, SummaryResponse
from hub_server.services.patient_proof import (
    check_card_signature,
    decode_certificate,
    verify_patient,
)

__all__ = ["ASSURANCE", "lookup_summary"]

ASSURANCE = {
    "face_check": "face_check",
    "pin_signature": "card_signature",
    "collation_b": "collation_b_device_attested",
}


def _audit_lookup(
    session: Session,
    caller: crud.Principal,
    body: SummaryRequest,
    *,
    outcome: str,
    patient_ref: str | None,
) -> None:
    device = session.get(Device, caller.id)
    append_audit(
        session,
        actor=caller.key_id,
        action="summary_lookup",
        subject=f"device:{caller.id}",
        patient_ref=patient_ref,
        details={
            "device_name": device.name if device else None,
            "fire_department": device.fire_department if device else None,
            "crew_member": body.crew_member,
            "consent": body.consent,
            "evidence": body.evidence.kind,
            "assurance": ASSURANCE[body.evidence.kind],
            "outcome": outcome,
        },
        now=utcnow(),
    )
    session.commit()


def lookup_summary(
    hub: HubState, session: Session, caller: crud.Principal, body: SummaryRequest
) -> SummaryResponse:
    """Verify certificate, consent and evidence, then return the emergency summary Bundle."""
    der = decode_certificate(body.certificate)
    try:
        cert = verify_patient(hub, der)
        if body.evidence.kind == "pin_signature":
            if not body.evidence.challenge_id or not body.evidence.signature:
                raise InvalidInput(
                    "evidence_incomplete",
                    "pin_signature needs challenge_id and signature",
                    "PIN による本人確認の情報が不足しています。",
                )
            check_card_signature(
                session,
                cert,
                challenge_id=body.evidence.challenge_id,
                purpose="summary",
                device_id=caller.id,
                signature=body.evidence.signature,
            )
    except HubError as exc:
        session.rollback()
        _audit_lookup(session, caller, body, outcome=f"rejected:{exc.code}", patient_ref=None)
        raise
    assurance = ASSURANCE[body.evidence.kind]
    if body.consent == "refused":
        _audit_lookup(session, caller, body, outcome="refused", patient_ref=cert.patient_ref)
        return SummaryResponse(status="refused", assurance=assurance, bundle=None)
    bundle = hub.medical().summary(cert.patient_key, now=utcnow())
    outcome: Literal["found", "not_found"] = "found" if bundle is not None else "not_found"
    _audit_lookup(session, caller, body, outcome=outcome, patient_ref=cert.patient_ref)
    return SummaryResponse(status=outcome, assurance=assurance, bundle=bundle)
