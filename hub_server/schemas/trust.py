"""CRLs, revocation snapshots and the audit trail with its checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hub_server.schemas._base import _Strict

__all__ = [
    "AuditEntryPublic",
    "AuditPage",
    "CheckpointBody",
    "CrlIngest",
    "CrlIngested",
    "RevocationSnapshotBody",
    "SignedCheckpoint",
    "SignedSnapshot",
]


class CrlIngest(_Strict):
    crl: str = Field(min_length=1, description="DER CRL, base64")


class CrlIngested(BaseModel):
    version: int
    revoked_count: int


class RevocationSnapshotBody(BaseModel):
    format: str
    version: int
    since: int
    full: bool
    issued_at: str
    added: list[str]
    removed: list[str]


class SignedSnapshot(BaseModel):
    """``signature`` = base64url Ed25519 by the hub key over RFC 8785 JSON of ``snapshot``."""

    snapshot: RevocationSnapshotBody
    key_id: str
    signature: str


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    hash: str


class CheckpointBody(BaseModel):
    format: str
    seq: int
    hash: str
    at: str


class SignedCheckpoint(BaseModel):
    """The audit chain's head signed with the hub key (``kyukyu hub audit verify
    --checkpoint``); keep it outside the database."""

    checkpoint: CheckpointBody
    key_id: str
    signature: str


class AuditPage(BaseModel):
    entries: list[AuditEntryPublic]
    checkpoint: SignedCheckpoint | None = None
