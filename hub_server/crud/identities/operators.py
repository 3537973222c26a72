"""Operators (run the platform) and technicians (set up a fire department's devices)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from hub_server.core.errors import InvalidInput
from hub_server.core.security import new_id
from hub_server.crud.identities.keys import check_signing_key
from hub_server.models import Operator

__all__ = ["ROLES", "create_operator"]

ROLES = ("operator", "technician")


def create_operator(
    session: Session,
    *,
    name: str,
    role: str,
    public_key: str,
    now: datetime,
    fire_department: str | None = None,
) -> Operator:
    if role not in ROLES:
        raise InvalidInput("bad_role", f"role must be one of {ROLES}")
    if role == "technician" and not fire_department:
        raise InvalidInput("fire_department_required", "a technician belongs to a fire department")
    op = Operator(
        id=new_id(),
        name=name,
        role=role,
        fire_department=fire_department,
        public_key=check_signing_key(public_key),
        created_at=now,
    )
    session.add(op)
    return op
