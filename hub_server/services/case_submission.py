"""Submitting a sealed case: one transaction, idempotent, then the push.

One commit holds the request's nonce, the Idempotency-Key with its final response, the
case, its numbered events and the audit row. If anything fails it all rolls back; the
nonce is then recorded on its own so the request cannot be replayed. A retry with the
same key gets the first answer again (``Submission.replayed``).

The hub stores the ciphertext only and routes by the metadata the device sends (case
id, recipient hospital ids); if the bytes are a ``sync.envelope`` v1 sealed case, its
clear header must agree with that metadata.

A hospital may hand in a case a device delivered to it directly while the platform was
out (``relay_case``, docs/disaster.md): the same path stores it, under the hospital's
nonce and Idempotency-Key, audited with ``"route": "direct", "reported_by"``. Whoever
comes first stores the case; a later post of the same sealed case by its device or
another recipient answers 200 with the stored case (``_same_case``): one case per id.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from pydantic import ValidationError
from sqlalchemy import Connection
from sqlmodel import select

from hub_server import crud
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import (
    CaseExists,
    Conflict,
    InvalidInput,
    NotAllowed,
    RequestReplayed,
    UnknownRecipients,
    revoked_caller,
)
from hub_server.core.events import PendingEvent
from hub_server.core.state import HubState
from hub_server.crud.case_batch import BatchRefused, CaseRow, UniqueTaken
from hub_server.crud.identities.keys import signing_key
from hub_server.models import Case, CaseRecipient, Device
from hub_server.schemas import CaseCreate, CaseCreated
from hub_server.services.case_writer import CaseWriter
from hub_server.services.nonces import record_pending_nonce
from hub_server.services.sealed_check import OwnCaseRefused, check_sealed, check_sealed_by
from sync.envelope import SealedCase, envelope_from_text
from sync.signed import canonical_json

__all__ = ["Submission", "relay_case", "submit_case"]


@dataclass(frozen=True)
class Submission:
    """The answer to a submitted case: HTTP-free status and JSON body text."""

    status: int
    body: str
    replayed: bool = False


@dataclass(frozen=True)
class _Request:
    caller: crud.Principal
    device: Device
    body: CaseCreate
    recipients: list[str]
    envelope: bytes
    idempotency_key: str
    request_hash: str
    response: str
    now: datetime
    route: str = "platform"  # direct: reconciled after the direct route (audited)
    reported_by: str | None = None  # the hospital that handed in a directly received case

    @property
    def audit_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"recipients": self.recipients, "size": len(self.envelope)}
        if self.route != "platform":
            details["route"] = self.route
        if self.reported_by is not None:
            details["reported_by"] = self.reported_by
        return details


class _KeyTaken(Exception):
    """The Idempotency-Key (or the case id) already exists; the transaction rolled back."""

    def __init__(self, *, case_id_taken: bool = False) -> None:
        super().__init__()
        self.case_id_taken = case_id_taken


async def to_thread(fn: Callable[..., Submission], *args: object) -> Submission:
    """``fn(*args)`` on a request thread (anyio's default thread pool)."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


async def submit_case(
    hub: HubState,
    caller: crud.Principal,
    body: CaseCreate,
    *,
    idempotency_key: str,
    route: str = "platform",
    device: Device | None = None,
    sealed: SealedCase | None = None,
) -> Submission:
    """Store a sealed case and push a numbered event to every recipient hospital.

    ``caller`` is a device whose nonce is still to be recorded (``caller.nonce``), or a
    recipient hospital handing in ``device``'s case (``relay_case``, which parsed it:
    ``sealed``).
    SQLite: the transaction runs on a request thread. PostgreSQL: the checks run on the
    event loop (no I/O, about 0.1 ms of signature verification) and the loop awaits the
    case writer's commit (group commit); only a failure (recording the nonce on its own,
    reading the first answer of a retried key) goes to a thread.
    """
    if not hub.settings.is_postgres:
        return await to_thread(
            _submit_in_transaction, hub, caller, body, idempotency_key, route, device, sealed
        )
    req: _Request | None = None
    try:
        req = _prepare(hub, caller, body, idempotency_key, route, device, sealed)
        events = await _writer(hub).store(_case_row(hub, req))
        caller.nonce = None
    except Exception as exc:
        error = _stored_alone_error(caller, req, exc)
        return await to_thread(_failed, hub, caller, idempotency_key, req, error)
    return _stored(hub, req, events)


def _submit_in_transaction(
    hub: HubState,
    caller: crud.Principal,
    body: CaseCreate,
    idempotency_key: str,
    route: str,
    device: Device | None,
    sealed: SealedCase | None,
) -> Submission:
    """SQLite (request thread): one transaction, statement by statement."""
    req: _Request | None = None
    try:
        req = _prepare(hub, caller, body, idempotency_key, route, device, sealed)
        with hub.write_transaction() as conn:
            events = _store(conn, hub, req)
        caller.nonce = None
    except Exception as exc:
        return _failed(hub, caller, idempotency_key, req, exc)
    return _stored(hub, req, events)


def _prepare(
    hub: HubState,
    caller: crud.Principal,
    body: CaseCreate,
    idempotency_key: str,
    route: str,
    device: Device | None = None,
    sealed: SealedCase | None = None,
) -> _Request:
    """The checked request (no I/O): envelope, recipients and the 201 to answer."""
    now = utcnow()
    reported_by = None
    if device is None:  # the device's own post
        own = caller.row  # loaded (and checked not revoked) by the authentication
        assert isinstance(own, Device)
        device = own
        envelope = check_sealed(
            body.envelope, body.case_id, body.recipients, caller,
            opaque_allowed=hub.settings.accepts_opaque_envelopes,
            require_pq=hub.settings.require_pq,
        )  # fmt: skip
    else:  # a recipient hospital hands in the device's sealed case (never opaque bytes)
        key = signing_key(device.public_key)
        envelope = check_sealed_by(
            body.envelope, body.case_id, body.recipients, device.id, key,
            opaque_allowed=False, parsed=sealed,
        )  # fmt: skip
        reported_by = caller.id
    request_hash = _request_hash(body)  # the envelope is checked base64 now
    recipients = crud.check_recipients(body.recipients, hub.settings.max_recipients)
    response = CaseCreated(
        case_id=body.case_id, recipients=recipients, created_at=now
    ).model_dump_json()
    return _Request(
        caller, device, body, recipients, envelope, idempotency_key, request_hash,
        response, now, route, reported_by,
    )  # fmt: skip


_ENVELOPE_SLOT = b'"envelope":""'


def _request_hash(body: CaseCreate) -> str:
    """SHA-256 of the body's RFC 8785 canonical JSON (what a repeated Idempotency-Key is
    compared by), with the envelope spliced in: checked base64 text (``envelope_from_text``
    has decoded it strictly) needs no escaping, so its canonical form is itself between
    quotes, and ``rfc8785`` walking a v2 case's 16 KB of it in Python cost ~40 us a case.
    The bytes hashed are the same (``tests/hub_server/test_case_post_path.py``)."""
    doc = body.model_dump()
    head = canonical_json({**doc, "envelope": ""})
    # In canonical JSON a quote inside a string is escaped: only the key matches.
    at = head.index(_ENVELOPE_SLOT) + len(_ENVELOPE_SLOT) - 1
    digest = hashlib.sha256(head[:at])
    digest.update(doc["envelope"].encode("ascii"))
    digest.update(head[at:])
    return digest.hexdigest()


def _stored(hub: HubState, req: _Request, events: list[PendingEvent]) -> Submission:
    hub.bus.publish(events)
    if hub.settings.is_postgres:  # the audit row is pending: chain it soon
        hub.chain_audit_soon()
    return Submission(201, req.response)


def _failed(
    hub: HubState,
    caller: crud.Principal,
    idempotency_key: str,
    req: _Request | None,
    exc: Exception,
) -> Submission:
    """After a case that was not stored (request thread): the nonce is recorded on its
    own; a taken key answers with the first answer, anything else is raised again."""
    record_pending_nonce(hub, caller)
    if isinstance(exc, OwnCaseRefused):
        held = _stored_same(hub, exc.case_id, exc.device_id, exc.raw)
        if held is not None:
            return held
    if isinstance(exc, CaseExists) and req is not None:  # SQLite: the case id is taken
        exc = _KeyTaken(case_id_taken=True)
    if isinstance(exc, _KeyTaken):  # raised by the storing, after ``_prepare``
        assert req is not None
        return _replay(hub, caller.key_id, idempotency_key, req, case_id_taken=exc.case_id_taken)
    raise exc


_WRITER_LOCK = threading.Lock()


def _writer(hub: HubState) -> CaseWriter:
    if hub.case_writer is None:
        with _WRITER_LOCK:
            if hub.case_writer is None:
                hub.case_writer = CaseWriter(hub.engine)
    writer: CaseWriter = hub.case_writer
    return writer


def _nonce(caller: crud.Principal) -> tuple[str, datetime]:
    assert caller.nonce is not None
    assert caller.nonce_expires is not None
    return caller.nonce, caller.nonce_expires


def _case_row(hub: HubState, req: _Request) -> CaseRow:
    nonce, expires = _nonce(req.caller)
    meta = crud.case_meta(case_id=req.body.case_id, device=req.device, now=req.now)
    return CaseRow(
        key_id=req.caller.key_id,
        nonce=nonce,
        nonce_expires=expires,
        idempotency_key=req.idempotency_key,
        request_hash=req.request_hash,
        response=req.response,
        case_id=req.body.case_id,
        device_id=req.device.id,
        envelope=req.envelope,
        recipients=req.recipients,
        payload=json.dumps(meta, separators=(",", ":"), ensure_ascii=False),
        # The base64 text as received (strictly decoded, so the canonical text of the
        # stored bytes): passed through to the event unchanged, never encoded again.
        data={**meta, "envelope": req.body.envelope},
        details=req.audit_details,
        now=req.now,
        origin=hub.bus.origin,
    )


def _stored_alone_error(caller: crud.Principal, req: _Request | None, exc: Exception) -> Exception:
    """The error of a case the case writer could not store (PostgreSQL), as the hub
    answers it: a unique violation names its table, a refused batch of one says why."""
    if isinstance(exc, UniqueTaken):
        if exc.table == "nonces":
            caller.nonce = None  # it is recorded: by the first request
            return RequestReplayed()
        if exc.table in ("idempotency_records", "cases", "case_recipients"):
            return _KeyTaken(case_id_taken=exc.table != "idempotency_records")
    if isinstance(exc, BatchRefused):
        if exc.revoked:
            return revoked_caller("device")
        return UnknownRecipients(exc.missing[0])
    return exc


def _store(conn: Connection, hub: HubState, req: _Request) -> list[PendingEvent]:
    """SQLite (one writer anyway): statement by statement, the audit row chained at once."""
    nonce, expires = _nonce(req.caller)
    if not crud.record_nonce(conn, key_id=req.caller.key_id, nonce=nonce, expires_at=expires):
        req.caller.nonce = None  # it is recorded: by the first request
        raise RequestReplayed
    if not crud.claim_idempotent(
        conn,
        owner=req.caller.key_id,
        key=req.idempotency_key,
        request_hash=req.request_hash,
        now=req.now,
        status=201,
        body=req.response,
    ):
        raise _KeyTaken
    _, events = crud.create_case(
        conn,
        device=req.device,
        case_id=req.body.case_id,
        recipients=req.body.recipients,
        envelope=req.envelope,
        envelope_text=req.body.envelope,
        max_recipients=hub.settings.max_recipients,
        now=req.now,
        origin=hub.bus.origin,
    )
    # Last before the commit: the audit head lock.
    append_audit(
        conn,
        actor=req.caller.key_id,
        action="case_created",
        subject=f"case:{req.body.case_id}",
        details=req.audit_details,
        now=req.now,
    )
    return events


def _replay(
    hub: HubState, owner: str, key: str, req: _Request, *, case_id_taken: bool = False
) -> Submission:
    request_hash = req.request_hash
    with hub.session() as session:
        existing = crud.idempotency_record(session, owner=owner, key=key)
    if existing is None and case_id_taken:
        same = _same_case(hub, req)
        if same is None:
            raise CaseExists
        return same
    if existing is None:  # deleted in between (a failed legacy claim): let the caller retry
        raise Conflict("idempotency_conflict", "the request is being retried; try again")
    if existing.request_hash != request_hash:
        raise InvalidInput(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different payload",
            "同じ再送キーで別の内容が送信されました。",
        )
    if existing.status != "done" or existing.response_body is None:
        raise Conflict(
            "request_in_progress", "the first request with this key is still in progress"
        )
    return Submission(existing.response_status or 200, existing.response_body, replayed=True)


def _same_case(hub: HubState, req: _Request) -> Submission | None:
    """The stored case answered again (200, ``replayed``) when it is this very sealed case:
    the same device and the same envelope bytes (or its envelope already purged). So the
    device's own post after a hospital handed its case in, or a second recipient handing
    it in, is a success on the one stored case, whatever its Idempotency-Key."""
    return _stored_same(hub, req.body.case_id, req.device.id, req.envelope)


def _stored_same(hub: HubState, case_id: str, device_id: str, raw: bytes) -> Submission | None:
    """``_same_case`` by the case id, the device and the envelope's bytes."""
    with hub.session() as session:
        case = session.get(Case, case_id)
        if case is None or case.device_id != device_id:
            return None
        if case.envelope is not None and bytes(case.envelope) != raw:
            return None
        recipients = sorted(
            session.exec(
                select(CaseRecipient.hospital_id).where(CaseRecipient.case_id == case.id)
            ).all()
        )
        created_at = case.created_at
    if created_at.tzinfo is None:  # SQLite keeps UTC without its zone
        created_at = created_at.replace(tzinfo=UTC)
    body = CaseCreated(case_id=case.id, recipients=recipients, created_at=created_at)
    return Submission(200, body.model_dump_json(), replayed=True)


async def relay_case(
    hub: HubState, caller: crud.Principal, *, case_id: str, device_id: str, envelope: str
) -> Submission:
    """A recipient hospital (``caller``, its nonce still to be recorded) hands in a case
    that ``device_id`` delivered to it directly while the platform was out
    (docs/disaster.md). The case is never opened here: the envelope's clear header must
    name this case and device and the hospital among its recipients, the device must be
    enrolled and not revoked, and the device's signature must check; then it is stored by
    ``submit_case`` (route direct, ``reported_by`` the hospital) under the hospital's own
    Idempotency-Key for the case. 201 stored; 200 it was stored already (one case).
    """
    try:
        device, body, sealed = await anyio.to_thread.run_sync(
            functools.partial(_relayed, hub, caller, case_id, device_id, envelope)
        )
    except Exception:
        await anyio.to_thread.run_sync(record_pending_nonce, hub, caller)
        raise
    return await submit_case(
        hub, caller, body, idempotency_key=f"direct-receipt:{case_id}", route="direct",
        device=device, sealed=sealed,
    )  # fmt: skip


def _relayed(
    hub: HubState, caller: crud.Principal, case_id: str, device_id: str, envelope: str
) -> tuple[Device, CaseCreate, SealedCase]:
    """The enrolled device, the routing and the parsed envelope of a handed-in case
    (request thread), parsed once for this hop:
    403 ``unknown_device`` or ``not_a_recipient``, 422 for an envelope that is not this
    device's sealed case ``case_id`` (its signature is checked by ``_prepare``)."""
    try:
        sealed = SealedCase.from_bytes(envelope_from_text(envelope))
    except Exception:
        raise InvalidInput(
            "malformed_envelope",
            "the sealed case cannot be parsed",
            "送信データが壊れています。",
        ) from None
    if sealed.case_id != case_id or sealed.device_id != device_id:
        raise InvalidInput(
            "envelope_mismatch",
            "the envelope's case id or device differ from the request",
            "送信データと事案・端末の情報が一致しません。",
        )
    if caller.id not in sealed.recipient_ids:
        raise NotAllowed(
            "not_a_recipient",
            "this hospital is not a recipient of the case",
            "この病院はこの事案の送信先ではありません。",
        )
    with hub.session() as session:
        device = session.get(Device, device_id)
        if device is not None:
            session.expunge(device)
    if device is None or device.revoked:
        raise NotAllowed(
            "unknown_device",
            "not an enrolled device (or revoked)",
            "登録されていない端末です（または失効しています）。",
        )
    try:
        body = CaseCreate(
            case_id=case_id, recipients=sorted(set(sealed.recipient_ids)), envelope=envelope
        )
    except ValidationError:
        raise InvalidInput(
            "bad_recipients", "the envelope's recipients are not hospital ids",
            "送信先病院の指定が正しくありません。",
        ) from None  # fmt: skip
    return device, body, sealed
