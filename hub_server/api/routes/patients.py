"""Patient viewing history: only the card holder, proving possession of the card."""

from __future__ import annotations

from fastapi import APIRouter

from hub_server.api.deps import HubDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.schemas import ChallengePublic, HistoryRequest, HistoryResponse
from hub_server.services.patient_proof import new_challenge
from hub_server.services.viewing_history import viewing_history as history

router = APIRouter(tags=["patients"], responses=ERRORS)


@router.post("/v1/patients/challenges", response_model=ChallengePublic, status_code=201)
def history_challenge(hub: HubDep, session: SessionDep) -> ChallengePublic:
    """A single-use nonce for the patient's card to sign (no caller key needed)."""
    ch = new_challenge(hub, session, purpose="history", device_id=None)
    return ChallengePublic(challenge_id=ch.id, nonce=ch.nonce, expires_at=ch.expires_at)


@router.post("/v1/patients/history", response_model=HistoryResponse)
def viewing_history(body: HistoryRequest, hub: HubDep, session: SessionDep) -> HistoryResponse:
    """Who looked up this patient's summary: device, fire department, crew member, time, consent."""
    return history(hub, session, body)
