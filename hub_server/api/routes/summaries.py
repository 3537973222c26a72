"""The マイナ救急 step: challenges and the emergency summary look-up.

The hub verifies the patient's certificate itself and, for PIN proof, the card's
signature over the hub's own single-use challenge. Every look-up, including a
refused consent and a rejected certificate, is audited (with a pseudonymous
patient reference, never the certificate subject).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter
from sqlmodel import Session

from hub_server import crud
from hub_server.api.deps import DeviceDep, HubDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.audit import append_audit
from hub_server.core.certs import PatientCertificate, verify_card_signature
from hub_server.core.db import utcnow
from hub_server.core.errors import HubError
from hub_server.core.state import HubState
from hub_server.models import Device
from hub_server.schemas import ChallengePublic, SummaryRequest, SummaryResponse
from sync.signed import b64d

router = APIRouter(tags=["summaries"], responses=ERRORS)

ASSURANCE = {
    "face_check": "face_check",
    "pin_signature": "card_signature",
    "collation_b": "collation_b_device_attested",
}


def decode_certificate(text: str) -> bytes:
    try:
        return b64d(text)
    except ValueError:
        raise HubError(
            422,
            "malformed_certificate",
            "certificate must be base64 DER",
            "証明書の形式が正しくありません。カードを読み直してください。",
        ) from None


def verify_patient(hub: HubState, der: bytes) -> PatientCertificate:
    if hub.verifier is None:
        raise HubError(503, "no_trust_roots", "the hub has no trust roots configured")
    return hub.verifier.verify(der, now=utcnow())


@router.post("/v1/challenges", response_model=ChallengePublic, status_code=201)
def create_challenge(caller: DeviceDep, hub: HubDep, session: SessionDep) -> ChallengePublic:
    """A single-use, short-lived nonce for the card to sign (PIN proof)."""
    ch = crud.create_challenge(
        session,
        purpose="summary",
        device_id=caller.id,
        ttl=timedelta(seconds=hub.settings.challenge_ttl_seconds),
        now=utcnow(),
    )
    session.commit()
    return ChallengePublic(challenge_id=ch.id, nonce=ch.nonce, expires_at=ch.expires_at)


def _audit_lookup(
    session: Session,
    caller: Any,
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


@router.post("/v1/summaries", response_model=SummaryResponse)
def lookup_summary(
    body: SummaryRequest, caller: DeviceDep, hub: HubDep, session: SessionDep
) -> SummaryResponse:
    """Verify certificate, consent and evidence, then return the emergency summary Bundle."""
    der = decode_certificate(body.certificate)
    try:
        cert = verify_patient(hub, der)
        if body.evidence.kind == "pin_signature":
            if not body.evidence.challenge_id or not body.evidence.signature:
                raise HubError(
                    422,
                    "evidence_incomplete",
                    "pin_signature needs challenge_id and signature",
                    "PIN による本人確認の情報が不足しています。",
                )
            ch = crud.consume_challenge(
                session,
                challenge_id=body.evidence.challenge_id,
                purpose="summary",
                device_id=caller.id,
                now=utcnow(),
            )
            session.commit()
            try:
                signature = b64d(body.evidence.signature)
            except ValueError:
                raise HubError(422, "bad_signature_encoding", "signature must be base64") from None
            verify_card_signature(cert, b64d(ch.nonce), signature)
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
