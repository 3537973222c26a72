"""Patient viewing history: only the card holder, proving possession of the card.

The patient (through a device or a kiosk) gets a challenge, has the card sign its
nonce with the user-authentication key, and sends certificate + signature. Nobody
else can produce that signature, so nobody else can read the list.
"""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi import APIRouter
from sqlmodel import col, select

from hub_server import crud
from hub_server.api.deps import HubDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.api.routes.summaries import decode_certificate, verify_patient
from hub_server.core.audit import append_audit
from hub_server.core.certs import verify_card_signature
from hub_server.core.db import utcnow
from hub_server.core.errors import HubError
from hub_server.models import AuditEntry
from hub_server.schemas import ChallengePublic, HistoryEntry, HistoryRequest, HistoryResponse
from sync.signed import b64d

router = APIRouter(tags=["patients"], responses=ERRORS)


@router.post("/v1/patients/challenges", response_model=ChallengePublic, status_code=201)
def history_challenge(hub: HubDep, session: SessionDep) -> ChallengePublic:
    """A single-use nonce for the patient's card to sign (no caller key needed)."""
    ch = crud.create_challenge(
        session,
        purpose="history",
        device_id=None,
        ttl=timedelta(seconds=hub.settings.challenge_ttl_seconds),
        now=utcnow(),
    )
    session.commit()
    return ChallengePublic(challenge_id=ch.id, nonce=ch.nonce, expires_at=ch.expires_at)


@router.post("/v1/patients/history", response_model=HistoryResponse)
def viewing_history(body: HistoryRequest, hub: HubDep, session: SessionDep) -> HistoryResponse:
    """Who looked up this patient's summary: device, fire department, crew member, time, consent."""
    cert = verify_patient(hub, decode_certificate(body.certificate))
    now = utcnow()
    ch = crud.consume_challenge(
        session, challenge_id=body.challenge_id, purpose="history", device_id=None, now=now
    )
    session.commit()
    try:
        signature = b64d(body.signature)
    except ValueError:
        raise HubError(422, "bad_signature_encoding", "signature must be base64") from None
    verify_card_signature(cert, b64d(ch.nonce), signature)
    rows = session.exec(
        select(AuditEntry)
        .where(AuditEntry.patient_ref == cert.patient_ref, AuditEntry.action == "summary_lookup")
        .order_by(col(AuditEntry.seq))
    ).all()
    entries = []
    for row in rows:
        d = json.loads(row.details)
        entries.append(
            HistoryEntry(
                at=row.at,
                action=row.action,
                device_id=row.actor.partition(":")[2],
                device_name=d.get("device_name"),
                fire_department=d.get("fire_department"),
                crew_member=d.get("crew_member"),
                consent=d.get("consent"),
                evidence=d.get("evidence"),
                outcome=d.get("outcome"),
            )
        )
    append_audit(
        session,
        actor="patient",
        action="history_viewed",
        subject="patient",
        patient_ref=cert.patient_ref,
        details={"entries": len(entries)},
        now=now,
    )
    session.commit()
    return HistoryResponse(entries=entries)
