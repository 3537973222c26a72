"""The マイナ救急 step: challenges and the emergency summary look-up (every look-up audited)."""

from __future__ import annotations

from fastapi import APIRouter

from hub_server.api.deps import DeviceDep, HubDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.schemas import ChallengePublic, SummaryRequest, SummaryResponse
from hub_server.services.patient_proof import new_challenge
from hub_server.services.summary_lookup import lookup_summary as lookup

router = APIRouter(tags=["summaries"], responses=ERRORS)


@router.post("/v1/challenges", response_model=ChallengePublic, status_code=201)
def create_challenge(caller: DeviceDep, hub: HubDep, session: SessionDep) -> ChallengePublic:
    """A single-use, short-lived nonce for the card to sign (PIN proof)."""
    ch = new_challenge(hub, session, purpose="summary", device_id=caller.id)
    return ChallengePublic(challenge_id=ch.id, nonce=ch.nonce, expires_at=ch.expires_at)


@router.post("/v1/summaries", response_model=SummaryResponse)
def lookup_summary(
    body: SummaryRequest, caller: DeviceDep, hub: HubDep, session: SessionDep
) -> SummaryResponse:
    """Verify certificate, consent and evidence, then return the emergency summary Bundle."""
    return lookup(hub, session, caller, body)
