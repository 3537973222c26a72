"""A CA's CRL into the revocation set: checked, recorded, audited, committed.

Shared by ``POST /v1/revocation/crl`` and ``kyukyu hub ingest-crl``. The CRL must be
signed by one of the hub's pinned JPKI authentication roots (``edge.jpki.trust``),
newer than the last one of its issuer and still current (``crud.ingest_crl``:
``CrlNotNewer``, ``CrlExpired``).
"""

from __future__ import annotations

from sqlmodel import Session

from hub_server import crud
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.state import HubState
from hub_server.schemas import CrlIngested

__all__ = ["ingest"]


def ingest(hub: HubState, session: Session, *, crl_der: bytes, actor: str) -> CrlIngested:
    """Ingest one DER CRL; the revocation version (the snapshot's number) grows by one."""
    roots = hub.verifier.crl_roots() if hub.verifier is not None else []
    now = utcnow()
    version = crud.ingest_crl(session, crl_der=crl_der, roots=roots, now=now)
    append_audit(
        session,
        actor=actor,
        action="crl_ingested",
        subject=f"revocation:{version.version}",
        details={
            "issuer": version.issuer,
            "revoked": version.revoked_count,
            "crl_number": version.crl_number,
        },
        now=now,
    )
    session.commit()
    hub.invalidate_revocation_cache()
    return CrlIngested(version=version.version, revoked_count=version.revoked_count)
