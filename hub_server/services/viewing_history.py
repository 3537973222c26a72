"""Patient viewing history: only the card holder, proving possession of the card.

The patient (through a device or a kiosk) gets a challenge, has the card sign its
nonce with the user-authentication key, and sends certificate + signature. Nobody
else can produce that signature, so nobody else can read the list.
"""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.state import HubState
from hub_server.models import AuditEntry
from hub_server.schemas import HistoryEntry, HistoryRequest, HistoryResponse
from hub_server.services.patient_proof import (
    check_card_signature,
    decode_certificate,
    verify_patient,
)

__all__ = ["viewing_history"]


def viewing_history(hub: HubState, session: Session, body: HistoryRequest) -> HistoryResponse:
    """Who looked up this patient's summary: device, fire department, crew member, time,
    consent (the viewing itself is audited too)."""
    cert = verify_patient(hub, decode_certificate(body.certificate))
    check_card_signature(
        session,
        cert,
        challenge_id=body.challenge_id,
        purpose="history",
        device_id=None,
        signature=body.signature,
    )
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
        now=utcnow(),
    )
    session.commit()
    return HistoryResponse(entries=entries)
