"""Revoking operators and technicians (operators only; devices: devices.py, hospitals:
hospitals.py).

Audited; the identity is refused on its next request and its open streams end within a
second in every hub process (``services.identity_revocation``).
"""

from __future__ import annotations

from fastapi import APIRouter

from hub_server.api.deps import OperatorDep, SessionDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.db import utcnow
from hub_server.models import Operator
from hub_server.schemas import IdentityRevoked, RevokeRequest
from hub_server.services import identity_revocation

router = APIRouter(tags=["revocation"], responses=ERRORS)


@router.post("/v1/operators/{operator_id}/revoke", response_model=IdentityRevoked)
def revoke_operator(
    operator_id: str,
    caller: OperatorDep,
    session: SessionDep,
    body: RevokeRequest | None = None,
) -> IdentityRevoked:
    """Revoke an operator or a technician (not oneself): refused on its next request."""
    row = session.get(Operator, operator_id)
    kind = row.role if row is not None else "operator"
    key_id = identity_revocation.revoke_identity(
        session,
        kind=kind,
        ident=operator_id,
        actor=caller.key_id,
        now=utcnow(),
        reason=body.reason if body else None,
    )
    return IdentityRevoked(key_id=key_id, kind=kind, revoked=True)
