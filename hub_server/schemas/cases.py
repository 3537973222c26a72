"""Sealed cases, their status, answers, destinations, closures, relays and refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from hub_server.schemas._base import TEXT, HospitalId, Id, _Strict

__all__ = [
    "AckPublic",
    "AnswerCreate",
    "AnswerPublic",
    "CaseCreate",
    "CaseCreated",
    "CaseRecipientStatus",
    "CaseStatus",
    "ClosureCreate",
    "ClosurePublic",
    "DestinationCreate",
    "DestinationPublic",
    "DirectReceipt",
    "RefusedCaseCreate",
    "RefusedCasePage",
    "RefusedCasePublic",
]


class CaseCreate(_Strict):
    case_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")
    recipients: list[HospitalId] = Field(min_length=1, max_length=64)
    envelope: str = Field(min_length=1, description="sealed case bytes, base64 (opaque)")


class DirectReceipt(_Strict):
    """A case a device delivered to this hospital directly (docs/disaster.md): the sealed
    envelope exactly as the device sent it (base64, as in ``CaseCreate``)."""

    case_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")
    device_id: str = Field(min_length=1, max_length=40)
    envelope: str = Field(min_length=1, description="the device's sealed case, base64")


class CaseCreated(BaseModel):
    case_id: str
    recipients: list[str]
    created_at: datetime


class CaseRecipientStatus(BaseModel):
    hospital_id: str
    acked: bool
    answer: str | None
    answered_at: datetime | None


class CaseStatus(BaseModel):
    case_id: str
    created_at: datetime
    destination_hospital_id: str | None
    purged: bool
    recipients: list[CaseRecipientStatus]


class AckPublic(BaseModel):
    case_id: str
    hospital_id: str
    acked_at: datetime


class AnswerCreate(_Strict):
    answer: Literal["accept", "decline"]
    reason: str | None = Field(default=None, max_length=500, pattern=TEXT)


class AnswerPublic(BaseModel):
    case_id: str
    hospital_id: str
    answer: str
    answered_at: datetime


class DestinationCreate(_Strict):
    hospital_id: str = Id
    via: Literal["answer", "phone"] = Field(
        default="answer",
        description="answer: the hospital answered accept (checked); phone: the crew "
        "confirmed the acceptance by phone",
    )


class DestinationPublic(BaseModel):
    case_id: str
    hospital_id: str
    via: str


class ClosureCreate(_Strict):
    recipients: list[HospitalId] = Field(min_length=1, max_length=64)
    envelope: str = Field(min_length=1, max_length=65536, description="sealed closure, base64")


class ClosurePublic(BaseModel):
    case_id: str
    recipients: list[str]
    closed_at: datetime


class RefusedCaseCreate(_Strict):
    """A hospital refused the case of one of its events: the event number, the posting
    device as the event named it, and the refusal's code. Never any content."""

    event_id: int = Field(ge=1, le=2**53, description="the hospital's stream event number")
    device_id: str | None = Field(
        default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$"
    )
    code: str = Field(
        min_length=1,
        max_length=60,
        pattern=r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?$",
        description="e.g. case_not_bundle, envelope_bad_signature, closure:envelope_malformed",
    )


class RefusedCasePublic(BaseModel):
    id: int
    hospital_id: str
    event_id: int
    case_id: str
    device_id: str | None
    code: str
    reported_at: datetime


class RefusedCasePage(BaseModel):
    reports: list[RefusedCasePublic]
