"""Revocation: operators ingest the CA's CRLs; devices fetch signed snapshots with deltas.

Snapshot (``kyukyu-revocation-v1``): ``{"snapshot": {format, version, since, full,
issued_at, added, removed}, "key_id", "signature"}``; serials are lowercase hex;
``signature`` is base64url Ed25519 (GET /v1/hub-key) over the RFC 8785 canonical
JSON of ``snapshot`` (docs/envelope.md, ``sync.signed``). ``version`` only grows (one
per accepted CRL; older or expired CRLs are refused); devices refuse to go back.
``since=0`` (or an unknown version) gives the full list; otherwise only what changed
after ``since``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub_server import crud
from hub_server.api.deps import HubDep, OperatorDep, SessionDep, SignedDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.db import utcnow
from hub_server.core.errors import InvalidInput, NotAllowed
from hub_server.schemas import CrlIngest, CrlIngested, RevocationSnapshotBody, SignedSnapshot
from hub_server.services import crl_ingestion
from sync.signed import b64d, b64d_std

router = APIRouter(tags=["revocation"], responses=ERRORS)


@router.post("/v1/revocation/crl", response_model=CrlIngested, status_code=201)
def ingest_crl(
    body: CrlIngest, caller: OperatorDep, hub: HubDep, session: SessionDep
) -> CrlIngested:
    try:
        der = b64d_std(body.crl)
    except ValueError:
        raise InvalidInput("malformed_crl", "crl must be base64 DER") from None
    return crl_ingestion.ingest(hub, session, crl_der=der, actor=caller.key_id)


@router.get("/v1/revocation/snapshot", response_model=SignedSnapshot)
def revocation_snapshot(
    caller: SignedDep,
    hub: HubDep,
    session: SessionDep,
    since: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> SignedSnapshot:
    """Revoked certificate serials for offline checks, signed by the hub."""
    if caller.kind == "hospital":
        raise NotAllowed("forbidden", "devices and staff fetch revocation snapshots")
    body = RevocationSnapshotBody(**crud.snapshot(session, since=since, now=utcnow()))
    return SignedSnapshot(**hub.hub_key.sign_document("snapshot", body.model_dump(mode="json")))


_KKRV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}
}


@router.get("/v1/revocation/snapshot.kkrv", response_class=Response, responses=_KKRV)
def revocation_snapshot_kkrv(caller: SignedDep, hub: HubDep, session: SessionDep) -> Response:
    """The full list in ``edge.jpki.revocation.RevocationSnapshot`` bytes (``KKRV``).

    ``sequence`` is the hub's revocation version; the signature is Ed25519 by the hub key
    (GET /v1/hub-key) over ``signed_payload()``. Check it with
    ``RevocationSnapshot.from_bytes(data, verify_signature=...)``.
    """
    if caller.kind == "hospital":
        raise NotAllowed("forbidden", "devices and staff fetch revocation snapshots")
    from edge.jpki.revocation import RevocationSnapshot

    body = crud.snapshot(session, since=0, now=utcnow())
    snap = RevocationSnapshot.from_serials(
        (int(s, 16) for s in body["added"]), sequence=body["version"]
    )
    signed = snap.with_signature(b64d(hub.hub_key.sign(snap.signed_payload())))
    return Response(signed.to_bytes(), media_type="application/octet-stream")
