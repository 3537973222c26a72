"""Sealed cases: post (idempotent), status, ack, answers, destination.

The hub stores the ciphertext only and routes by the metadata the device sends
(case id, recipient hospital ids); if the bytes are a ``sync.envelope`` v1 sealed
case, its clear header must agree with that metadata.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from sqlalchemy import Connection
from sqlmodel import col, select

from hub_server import crud
from hub_server.api.deps import (
    DeviceDep,
    DeviceTxDep,
    HospitalDep,
    HubDep,
    SessionDep,
    record_pending_nonce,
    replayed_error,
)
from hub_server.api.routes._common import ERRORS
from hub_server.core.audit import append_audit, append_audit_conn
from hub_server.core.db import utcnow
from hub_server.core.errors import HubError
from hub_server.core.events import PendingEvent
from hub_server.core.security import sha256_hex
from hub_server.core.state import HubState
from hub_server.crud._case_pg import UniqueTaken, insert_case_pg
from hub_server.models import Case, CaseRecipient, Device, IdempotencyRecord
from hub_server.schemas import (
    AckPublic,
    AnswerCreate,
    AnswerPublic,
    CaseCreate,
    CaseCreated,
    CaseRecipientStatus,
    CaseStatus,
    DestinationCreate,
    DestinationPublic,
)
from sync.signed import b64d, canonical_json

router = APIRouter(tags=["cases"], responses=ERRORS)

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="same key + same payload = same result; other payload = 422; in progress = 409",
    ),
]


def _check_envelope(body: CaseCreate) -> bytes:
    try:
        data = b64d(body.envelope)
    except ValueError:
        raise HubError(
            422, "bad_envelope", "envelope must be base64", "送信データの形式が不正です。"
        ) from None
    if data[:4] == b"KKSC":
        try:
            from sync.envelope import SealedCase

            sealed = SealedCase.from_bytes(data)
        except ImportError:
            return data
        except Exception:
            raise HubError(
                422,
                "malformed_envelope",
                "the sealed case cannot be parsed",
                "送信データが壊れています。",
            ) from None
        if sealed.case_id != body.case_id or set(sealed.recipient_ids) != set(body.recipients):
            raise HubError(
                422,
                "envelope_mismatch",
                "the envelope's case id or recipients differ from the routing metadata",
                "送信データと送信先の情報が一致しません。",
            )
    return data


class _KeyTaken(Exception):
    """The Idempotency-Key (or the case id) already exists; the transaction rolled back."""

    def __init__(self, *, case_id_taken: bool = False) -> None:
        super().__init__()
        self.case_id_taken = case_id_taken


@router.post("/v1/cases", response_model=CaseCreated, status_code=201)
def post_case(
    body: CaseCreate,
    caller: DeviceTxDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Store a sealed case and push a numbered event to every recipient hospital.

    One transaction (one commit): the request's nonce, the Idempotency-Key with its final
    response, the case, its numbered events and the audit row. If anything fails it all
    rolls back; the nonce is then recorded on its own so the request cannot be replayed.
    """
    now = utcnow()
    request_hash = sha256_hex(canonical_json(body.model_dump()))
    pending_audit = hub.settings.is_postgres
    try:
        envelope = _check_envelope(body)
        device = caller.row  # loaded (and checked not revoked) by the authentication
        assert isinstance(device, Device)
        recipients = crud.check_recipients(body.recipients, hub.settings.max_recipients)
        text = CaseCreated(
            case_id=body.case_id, recipients=recipients, created_at=now
        ).model_dump_json()
        with hub.write_transaction() as conn:
            insert = _insert_pg if pending_audit else _insert
            events = insert(
                conn, hub, caller, device, body, recipients, envelope, idempotency_key,
                request_hash, text, now,
            )  # fmt: skip
        caller.nonce = None
    except _KeyTaken as taken:
        record_pending_nonce(hub, caller)
        return _replay(
            hub, caller.key_id, idempotency_key, request_hash, case_id_taken=taken.case_id_taken
        )
    except Exception:
        record_pending_nonce(hub, caller)
        raise
    hub.bus.publish(events)
    if pending_audit:
        hub.chain_audit_soon()
    return JSONResponse(json.loads(text), status_code=201)


def _nonce(caller: crud.Principal) -> tuple[str, datetime]:
    assert caller.nonce is not None
    assert caller.nonce_expires is not None
    return caller.nonce, caller.nonce_expires


def _insert_pg(
    conn: Connection,
    hub: HubState,
    caller: crud.Principal,
    device: Device,
    body: CaseCreate,
    recipients: list[str],
    envelope: bytes,
    idempotency_key: str,
    request_hash: str,
    text: str,
    now: datetime,
) -> list[PendingEvent]:
    """PostgreSQL: everything in one statement; the audit row goes to audit_pending,
    chained in batches right after the commit (concurrent cases would otherwise queue one
    by one on the audit head lock until their commit)."""
    nonce, expires = _nonce(caller)
    meta = crud.case_meta(case_id=body.case_id, device=device, now=now)
    data = {**meta, "envelope": base64.b64encode(envelope).decode("ascii")}
    try:
        events = insert_case_pg(
            conn,
            key_id=caller.key_id,
            nonce=nonce,
            nonce_expires=expires,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            response=text,
            case_id=body.case_id,
            device_id=device.id,
            envelope=envelope,
            recipients=recipients,
            payload=json.dumps(meta, separators=(",", ":"), ensure_ascii=False),
            data=data,
            details={"recipients": recipients, "size": len(envelope)},
            now=now,
            origin=hub.bus.origin,
        )
    except UniqueTaken as taken:
        if taken.table == "nonces":
            caller.nonce = None  # it is recorded: by the first request
            raise replayed_error() from None
        if taken.table in ("idempotency_records", "cases", "case_recipients"):
            raise _KeyTaken(case_id_taken=taken.table != "idempotency_records") from None
        raise
    if len(events) != len(recipients):
        got = {ev.recipient.removeprefix("hospital:") for ev in events}
        raise crud.unknown_recipients([r for r in recipients if r not in got])
    return events


def _insert(
    conn: Connection,
    hub: HubState,
    caller: crud.Principal,
    device: Device,
    body: CaseCreate,
    recipients: list[str],
    envelope: bytes,
    idempotency_key: str,
    request_hash: str,
    text: str,
    now: datetime,
) -> list[PendingEvent]:
    """SQLite (one writer anyway): statement by statement, the audit row chained at once."""
    nonce, expires = _nonce(caller)
    if not crud.record_nonce(conn, key_id=caller.key_id, nonce=nonce, expires_at=expires):
        caller.nonce = None  # it is recorded: by the first request
        raise replayed_error()
    if not crud.claim_idempotent(
        conn,
        owner=caller.key_id,
        key=idempotency_key,
        request_hash=request_hash,
        now=now,
        status=201,
        body=text,
    ):
        raise _KeyTaken
    _, events = crud.create_case(
        conn,
        device=device,
        case_id=body.case_id,
        recipients=body.recipients,
        envelope=envelope,
        max_recipients=hub.settings.max_recipients,
        now=now,
        origin=hub.bus.origin,
    )
    # Last before the commit: the audit head lock.
    append_audit_conn(
        conn,
        actor=caller.key_id,
        action="case_created",
        subject=f"case:{body.case_id}",
        details={"recipients": recipients, "size": len(envelope)},
        now=now,
    )
    return events


def _replay(
    hub: HubState, owner: str, key: str, request_hash: str, *, case_id_taken: bool = False
) -> JSONResponse:
    with hub.session() as session:
        existing = session.get(IdempotencyRecord, (owner, key))
    if existing is None and case_id_taken:
        raise crud.case_exists()
    if existing is None:  # deleted in between (a failed legacy claim): let the caller retry
        raise HubError(409, "idempotency_conflict", "the request is being retried; try again")
    if existing.request_hash != request_hash:
        raise HubError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different payload",
            "同じ再送キーで別の内容が送信されました。",
        )
    if existing.status != "done" or existing.response_body is None:
        raise HubError(
            409, "request_in_progress", "the first request with this key is still in progress"
        )
    return JSONResponse(
        json.loads(existing.response_body),
        status_code=existing.response_status or 200,
        headers={"Idempotent-Replayed": "true"},
    )


@router.get("/v1/cases/{case_id}", response_model=CaseStatus)
def case_status(case_id: str, caller: DeviceDep, session: SessionDep) -> CaseStatus:
    """Where the device's case stands (acks and answers per hospital)."""
    case = session.get(Case, case_id)
    if case is None or case.device_id != caller.id:
        raise HubError(404, "unknown_case", "no such case for this device")
    rows = session.exec(
        select(CaseRecipient)
        .where(CaseRecipient.case_id == case_id)
        .order_by(col(CaseRecipient.hospital_id))
    ).all()
    return CaseStatus(
        case_id=case.id,
        created_at=case.created_at,
        destination_hospital_id=case.destination_hospital_id,
        purged=case.purged_at is not None,
        recipients=[
            CaseRecipientStatus(
                hospital_id=r.hospital_id,
                acked=r.acked_at is not None,
                answer=r.answer,
                answered_at=r.answered_at,
            )
            for r in rows
        ],
    )


@router.post("/v1/cases/{case_id}/ack", response_model=AckPublic)
def ack_case(case_id: str, caller: HospitalDep, session: SessionDep) -> AckPublic:
    """The hospital has the case (once every recipient has it, it may be purged later)."""
    row = crud.mark_acked(session, case_id=case_id, hospital_id=caller.id, now=utcnow())
    session.commit()
    assert row.acked_at is not None
    return AckPublic(case_id=case_id, hospital_id=caller.id, acked_at=row.acked_at)


@router.post("/v1/cases/{case_id}/answers", response_model=AnswerPublic, status_code=201)
def answer_case(
    case_id: str, body: AnswerCreate, caller: HospitalDep, hub: HubDep, session: SessionDep
) -> AnswerPublic:
    """Accept or decline; the sending device sees it live on its stream."""
    now = utcnow()
    _, events = crud.answer_case(
        session,
        case_id=case_id,
        hospital_id=caller.id,
        answer=body.answer,
        reason=body.reason,
        now=now,
        origin=hub.bus.origin,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="case_answered",
        subject=f"case:{case_id}",
        details={"answer": body.answer},
        now=now,
    )
    session.commit()
    hub.bus.publish(events)
    return AnswerPublic(case_id=case_id, hospital_id=caller.id, answer=body.answer, answered_at=now)


@router.post("/v1/cases/{case_id}/destination", response_model=DestinationPublic)
def confirm_destination(
    case_id: str, body: DestinationCreate, caller: DeviceDep, hub: HubDep, session: SessionDep
) -> DestinationPublic:
    """The device confirms where the patient goes; every recipient is told."""
    now = utcnow()
    _, events = crud.set_destination(
        session,
        case_id=case_id,
        device_id=caller.id,
        hospital_id=body.hospital_id,
        now=now,
        origin=hub.bus.origin,
    )
    append_audit(
        session,
        actor=caller.key_id,
        action="destination_confirmed",
        subject=f"case:{case_id}",
        details={"hospital_id": body.hospital_id},
        now=now,
    )
    session.commit()
    hub.bus.publish(events)
    return DestinationPublic(case_id=case_id, hospital_id=body.hospital_id)
