"""Emergency summary look-up and the patient's viewing history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from hub_server.schemas._base import TEXT, _Strict

__all__ = [
    "ChallengePublic",
    "Evidence",
    "HistoryEntry",
    "HistoryRequest",
    "HistoryResponse",
    "SummaryRequest",
    "SummaryResponse",
]


class ChallengePublic(BaseModel):
    challenge_id: str
    nonce: str = Field(description="32 random bytes, base64url: the card signs these bytes")
    expires_at: datetime


class Evidence(_Strict):
    kind: Literal["face_check", "pin_signature", "collation_b"]
    challenge_id: str | None = Field(default=None, max_length=40, pattern=TEXT)
    signature: str | None = Field(
        default=None, max_length=2048, description="card auth-key signature, base64"
    )


class SummaryRequest(_Strict):
    certificate: str = Field(
        min_length=1, max_length=8192, description="user-authentication certificate, base64 DER"
    )
    consent: Literal["consented", "unconscious", "refused"]
    evidence: Evidence
    crew_member: str = Field(min_length=1, max_length=100, pattern=TEXT)


class SummaryResponse(BaseModel):
    status: Literal["found", "not_found", "refused"]
    assurance: str
    bundle: dict[str, Any] | None = None


class HistoryRequest(_Strict):
    certificate: str = Field(min_length=1, max_length=8192)
    challenge_id: str = Field(min_length=1, max_length=40, pattern=TEXT)
    signature: str = Field(min_length=1, max_length=2048)


class HistoryEntry(BaseModel):
    at: datetime
    action: str
    device_id: str
    device_name: str | None
    fire_department: str | None
    crew_member: str | None
    consent: str | None
    evidence: str | None
    outcome: str | None


class HistoryResponse(BaseModel):
    entries: list[HistoryEntry]
