"""Operators and technicians (created by an operator) and the audit trail (operators only)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from hub_server import crud
from hub_server.api.deps import HubDep, OperatorDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.audit import append_audit, signed_checkpoint
from hub_server.core.db import utcnow
from hub_server.models import AuditEntry
from hub_server.schemas import (
    AuditEntryPublic,
    AuditPage,
    OperatorCreate,
    OperatorPublic,
    SignedCheckpoint,
)

router = APIRouter(tags=["operators"], responses=ERRORS)


@router.post("/v1/operators", response_model=OperatorPublic, status_code=201)
def create_operator(
    body: OperatorCreate, caller: OperatorDep, session: SessionDep
) -> OperatorPublic:
    now = utcnow()
    op = crud.create_operator(
        session,
        name=body.name,
        role=body.role,
        public_key=body.public_key,
        fire_department=body.fire_department,
        now=now,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="operator_created",
        subject=f"operator:{op.id}",
        details={"role": op.role, "fire_department": op.fire_department},
        now=now,
    )
    session.commit()
    return OperatorPublic(id=op.id, name=op.name, role=op.role, fire_department=op.fire_department)


@router.get("/v1/audit", response_model=AuditPage)
def read_audit(
    caller: OperatorDep,
    hub: HubDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The audit trail, oldest first (operators only; patient references are pseudonyms)."""
    hub.chain_audit()  # rows committed with their action but not yet linked
    # The signed head first, in the page's transaction: every page pins the chain.
    checkpoint = signed_checkpoint(session.connection(), hub.hub_key, now=utcnow())
    rows = session.exec(
        select(AuditEntry)
        .where(col(AuditEntry.seq) > after)
        .order_by(col(AuditEntry.seq))
        .limit(limit)
    ).all()
    return AuditPage(
        entries=[
            AuditEntryPublic(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                details=json.loads(r.details),
                hash=r.hash,
            )
            for r in rows
        ],
        checkpoint=SignedCheckpoint.model_validate(checkpoint),
    )
