"""The hospital's own database: opened cases (encrypted at rest), staff, sessions, audit.

SQLModel on SQLite (default) or PostgreSQL (by URL). The tables live in their own
metadata (not the hub's). Opened case Bundles are stored AES-256-GCM encrypted
with the storage key of ``hospital-key.json`` (the case id is the AAD); the
clear columns are routing and workflow facts only (no patient data). Audit rows
name who did what to which case, never what the case says.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import BigInteger, Engine, LargeBinary, MetaData, Text, false, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, Session, SQLModel, col, delete, select

from hospital.schema import make_engine, migrate

__all__ = [
    "SEALED_AT_EARLIEST",
    "SEALED_AT_FUTURE_LEEWAY",
    "STORE_UNAVAILABLE",
    "AuditRow",
    "CaseRow",
    "ClosureRow",
    "HospitalStore",
    "Rejection",
    "StaffSession",
    "StaffUser",
    "metadata",
    "sealed_at_is_suspect",
    "utcnow",
]

#: The errors of a store that is out for now (connection lost, database down, pool
#: exhausted): the work is kept and tried again, never refused for them.
STORE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)

# A sealing time (the envelope's created_at, the device's clock) outside these bounds is
# absurd: the case is stored and shown like any other, with ``sealed_at_suspect`` set.
# Before 2020-01-01 UTC no device of this service existed (a clock reset to 1970 lands
# here); more than a day ahead of the hospital's clock is no time zone or drift either.
SEALED_AT_EARLIEST = 1_577_836_800  # 2020-01-01T00:00:00Z
SEALED_AT_FUTURE_LEEWAY = 24 * 3600  # seconds
# The envelope's JSON integer is unbounded; the column is a signed 64-bit integer. A
# sealing time beyond it (flagged anyway) is stored as the nearest value the column holds.
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def sealed_at_is_suspect(sealed_at: int, now: datetime) -> bool:
    """Whether a sealing time (unix seconds) is absurd next to ``now`` (see the bounds)."""
    return not (SEALED_AT_EARLIEST <= sealed_at <= int(now.timestamp()) + SEALED_AT_FUTURE_LEEWAY)


class _Base(SQLModel, registry=registry()):
    pass


class CaseRow(_Base, table=True):
    __tablename__ = "cases"

    case_id: str = Field(primary_key=True, max_length=128)
    event_id: int
    device_id: str = Field(max_length=128, index=True)  # the direct route's answer feed
    # the envelope's created_at (unix seconds); 64-bit: a device's clock may say anything
    sealed_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    # the sealing time is absurd (far future or past): stored, shown flagged, never lost
    sealed_at_suspect: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # the sender the platform vouches for (its signed device-key document), not the case's claim
    sender_department: str | None = Field(default=None, max_length=200)
    received_at: datetime = Field(index=True)
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # nonce || AES-GCM
    answer: str | None = Field(default=None, max_length=16)  # accept | decline
    answer_reason: str | None = Field(default=None, max_length=40)
    answered_by: str | None = Field(default=None, max_length=80)
    answered_at: datetime | None = None
    # chosen | chosen_phone (the crew confirmed by phone) | elsewhere
    destination: str | None = Field(default=None, max_length=16)
    exported_at: datetime | None = None
    # how the case came: platform | direct (the device, while the platform was out)
    route: str = Field(
        default="platform", max_length=16, sa_column_kwargs={"server_default": "platform"}
    )
    # the answer was given while the platform was out: sent to it once it has the case
    answer_unsent: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # a direct case's sealed envelope as the device sent it (base64), kept until the
    # platform has the case (this hospital reports it: docs/disaster.md), then None
    direct_envelope: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # how that ended: reported | platform (its own event came first) | refused:<code>
    direct_report: str | None = Field(default=None, max_length=80)


class ClosureRow(_Base, table=True):
    """中止 / 不搬送 of a case: when, and the reason encrypted like the case (patient data)."""

    __tablename__ = "closures"

    case_id: str = Field(primary_key=True, max_length=128)
    event_id: int
    closed_at: datetime
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # nonce || AES-GCM


class Rejection(_Base, table=True):
    """A case event that was refused: the error code only, never content."""

    __tablename__ = "rejections"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    event_id: int
    case_id: str | None = Field(default=None, max_length=128)
    code: str = Field(max_length=60)
    # the posting device (the platform's routing metadata), shown to staff
    device_id: str | None = Field(default=None, max_length=128)
    # when the refusal was reported to the platform (None: not yet)
    reported_at: datetime | None = None
    # the sealed envelope as the platform sent it (base64url text), kept only for a case
    # refused because this hospital held no key of its kind (``envelope_wrong_key_kind``):
    # opened and taken in once the key file gives that key (hospital.keyring); NULL
    # otherwise, once taken or refused for another reason, and after the retention
    envelope: str | None = Field(default=None, sa_type=Text)


class StaffUser(_Base, table=True):
    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=200)
    totp_secret: str = Field(max_length=64)
    # a TOTP code is accepted once (replays are refused); 64-bit like every time
    last_totp_step: int = Field(default=0, sa_type=BigInteger)
    failures: int = 0
    locked_until: datetime | None = None
    disabled: bool = False
    created_at: datetime


class StaffSession(_Base, table=True):
    __tablename__ = "sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


class AuditRow(_Base, table=True):
    """Who did what, when (sign-in, failures, every case view, answers, exports, purges)."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    case_id: str | None = Field(default=None, max_length=128, index=True)
    detail: str = Field(default="", max_length=400)
    client: str | None = Field(default=None, max_length=64)


# The tables, for the migrations (hospital/migrations) and their tests.
metadata: MetaData = _Base.metadata


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive: they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class HospitalStore:
    def __init__(self, db_url: str, storage_key: bytes) -> None:
        """Open the database and upgrade its schema to this release's (``hospital.schema``).

        Raises:
            DatabaseSchemaError: the schema could not be upgraded (nothing is served).
        """
        self.engine: Engine = make_engine(db_url)
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._aead = AESGCM(storage_key)
        self._write_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    # -- cases --------------------------------------------------------------------------

    def _seal(self, case_id: str, bundle: dict[str, Any]) -> bytes:
        nonce = os.urandom(12)
        data = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()
        return nonce + self._aead.encrypt(nonce, data, case_id.encode())

    def bundle_of(self, row: CaseRow) -> dict[str, Any]:
        raw = self._aead.decrypt(row.blob[:12], row.blob[12:], row.case_id.encode())
        out: dict[str, Any] = json.loads(raw)
        return out

    def add_case(
        self,
        *,
        case_id: str,
        event_id: int,
        device_id: str,
        sealed_at: int,
        bundle: dict[str, Any],
        sender_department: str | None = None,
        route: str = "platform",
        envelope: str | None = None,
    ) -> bool:
        """Store an opened case; False if it was stored already (idempotent by case id).

        An absurd ``sealed_at`` (``sealed_at_is_suspect``) is stored as it came (clamped to
        64 bits), flagged. ``sender_department``: the fire department the platform vouches
        for (its signed device-key document), not what the case says. ``envelope``: a
        direct case's sealed envelope, kept to report the case to the platform.
        """
        with self._write_lock, self.session() as s:
            if s.get(CaseRow, case_id) is not None:
                return False
            now = utcnow()
            s.add(
                CaseRow(
                    case_id=case_id,
                    event_id=event_id,
                    device_id=device_id,
                    sealed_at=min(max(sealed_at, _BIGINT_MIN), _BIGINT_MAX),
                    sealed_at_suspect=sealed_at_is_suspect(sealed_at, now),
                    sender_department=sender_department,
                    received_at=now,
                    blob=self._seal(case_id, bundle),
                    route=route,
                    direct_envelope=envelope if route == "direct" else None,
                )
            )
            s.add(
                AuditRow(
                    at=utcnow(),
                    actor="receiver",
                    action="case_received",
                    case_id=case_id,
                    detail="" if route == "platform" else f"route:{route}",
                )
            )
            s.commit()
        return True

    def add_rejection(
        self,
        *,
        event_id: int,
        case_id: str | None,
        code: str,
        device_id: str | None = None,
        envelope: str | None = None,
    ) -> None:
        """Record a refused case event (``device_id``: who posted it, shown to staff;
        ``envelope``: kept to be opened again, for a refusal a new key may heal)."""
        with self._write_lock, self.session() as s:
            s.add(
                Rejection(
                    at=utcnow(),
                    event_id=event_id,
                    case_id=case_id,
                    code=code[:60],
                    device_id=device_id[:128] if device_id else None,
                    envelope=envelope,
                )
            )
            s.add(
                AuditRow(
                    at=utcnow(),
                    actor="receiver",
                    action="case_rejected",
                    case_id=case_id,
                    detail=code[:60],
                )
            )
            s.commit()

    def rejections(self) -> list[Rejection]:
        with self.session() as s:
            return list(s.exec(select(Rejection).order_by(col(Rejection.id))).all())

    def unreported_rejections(self, limit: int = 100) -> list[Rejection]:
        """Refusals not reported to the platform yet, oldest first."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Rejection)
                    .where(col(Rejection.reported_at).is_(None))
                    .order_by(col(Rejection.id))
                    .limit(limit)
                ).all()
            )

    def held_rejections(self, limit: int = 100) -> list[Rejection]:
        """Refusals whose envelope is kept to be opened again, oldest first."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Rejection)
                    .where(col(Rejection.envelope).is_not(None))
                    .order_by(col(Rejection.id))
                    .limit(limit)
                ).all()
            )

    def release_rejection(self, rejection_id: int, *, code: str | None = None) -> None:
        """A held refusal is settled: taken in after all (``code`` None: the row goes,
        the case is stored; the audit keeps both), or refused for ``code`` now (kept,
        its envelope dropped)."""
        with self._write_lock, self.session() as s:
            row = s.get(Rejection, rejection_id)
            if row is None:
                return
            if code is None:
                s.delete(row)
                action, detail = "case_rejection_healed", row.code
            else:
                row.code, row.envelope = code[:60], None
                s.add(row)
                action, detail = "case_rejected", code[:60]
            s.add(
                AuditRow(
                    at=utcnow(), actor="receiver", action=action, case_id=row.case_id,
                    detail=detail,
                )
            )  # fmt: skip
            s.commit()

    def mark_reported(self, rejection_id: int) -> None:
        with self._write_lock, self.session() as s:
            row = s.get(Rejection, rejection_id)
            if row is not None and row.reported_at is None:
                row.reported_at = utcnow()
                s.add(row)
                s.commit()

    def cases(self, limit: int = 100) -> list[CaseRow]:
        """Newest first."""
        with self.session() as s:
            rows = s.exec(
                select(CaseRow).order_by(col(CaseRow.received_at).desc()).limit(limit)
            ).all()
        for r in rows:
            r.received_at = _aware(r.received_at) or r.received_at
            r.answered_at = _aware(r.answered_at)
        return list(rows)

    def case(self, case_id: str) -> CaseRow | None:
        with self.session() as s:
            row = s.get(CaseRow, case_id)
        if row is not None:
            row.received_at = _aware(row.received_at) or row.received_at
            row.answered_at = _aware(row.answered_at)
        return row

    def set_answer(
        self, case_id: str, *, answer: str, reason: str | None, by: str, sent: bool = True
    ) -> None:
        """Record an answer; ``sent`` False: the platform does not have it yet (given while
        it was out: ``unsent_answers`` until ``mark_answer_sent``)."""
        with self._write_lock, self.session() as s:
            row = s.get(CaseRow, case_id)
            if row is None:
                return
            row.answer, row.answer_reason = answer, reason
            row.answered_by, row.answered_at = by, utcnow()
            row.answer_unsent = not sent
            s.add(row)
            s.add(
                AuditRow(
                    at=utcnow(),
                    actor=by,
                    action="case_answered",
                    case_id=case_id,
                    detail=answer if reason is None else f"{answer}:{reason}",
                )
            )
            s.commit()

    def unsent_answers(self, limit: int = 100) -> list[CaseRow]:
        """Answers given while the platform was out, oldest first."""
        with self.session() as s:
            rows = s.exec(
                select(CaseRow)
                .where(col(CaseRow.answer_unsent))
                .order_by(col(CaseRow.answered_at))
                .limit(limit)
            ).all()
        return list(rows)

    def mark_answer_sent(self, case_id: str, answer: str) -> None:
        """The platform took the answer (unless it changed meanwhile: then it is sent again)."""
        with self._write_lock, self.session() as s:
            row = s.get(CaseRow, case_id)
            if row is not None and row.answer == answer:
                row.answer_unsent = False
                s.add(row)
                s.commit()

    def unreported_direct(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """(case id, device id, envelope) of the direct cases the platform may not have
        yet, oldest first."""
        with self.session() as s:
            rows = s.exec(
                select(CaseRow.case_id, CaseRow.device_id, CaseRow.direct_envelope)
                .where(col(CaseRow.direct_envelope).is_not(None))
                .order_by(col(CaseRow.received_at))
                .limit(limit)
            ).all()
        return [(c, d, e) for c, d, e in rows if e is not None]

    def mark_direct_reported(self, case_id: str, outcome: str) -> None:
        """The platform has the direct case (``reported``, ``platform``) or refused it for
        good (``refused:<code>``): nothing more to report, the envelope is dropped."""
        with self._write_lock, self.session() as s:
            row = s.get(CaseRow, case_id)
            if row is not None and row.direct_envelope is not None:
                row.direct_envelope = None
                row.direct_report = outcome[:80]
                s.add(row)
                s.commit()

    def direct_answers(self, device_id: str, after: int, limit: int = 200) -> list[dict[str, Any]]:
        """The answers to ``device_id``'s cases given after answer number ``after`` (the
        audit row's id), for the direct route's answer feed: case id, answer, a decline's
        reason, time, and the number to ask after next."""
        with self.session() as s:
            rows = s.exec(
                select(AuditRow)
                .join(CaseRow, col(AuditRow.case_id) == col(CaseRow.case_id))
                .where(col(AuditRow.action) == "case_answered")
                .where(col(AuditRow.id) > after)
                .where(col(CaseRow.device_id) == device_id)
                .order_by(col(AuditRow.id))
                .limit(limit)
            ).all()
        out = []
        for audit in rows:
            answer, _, reason = audit.detail.partition(":")
            out.append(
                {
                    "seq": audit.id,
                    "case_id": audit.case_id,
                    "answer": answer,
                    "reason": reason or None,
                    "answered_at": (_aware(audit.at) or audit.at).isoformat(),
                }
            )
        return out

    def set_destination(self, case_id: str, chosen: bool, via: str = "answer") -> bool:
        with self._write_lock, self.session() as s:
            row = s.get(CaseRow, case_id)
            if row is None:
                return False
            if not chosen:
                row.destination = "elsewhere"
            else:
                row.destination = "chosen_phone" if via == "phone" else "chosen"
            s.add(row)
            s.add(
                AuditRow(
                    at=utcnow(),
                    actor="platform",
                    action="destination",
                    case_id=case_id,
                    detail=row.destination,
                )
            )
            s.commit()
        return True

    def add_closure(self, *, case_id: str, event_id: int, reason: str, closed_at: datetime) -> bool:
        """Record an opened closure (中止 / 不搬送); False if the case was closed already.

        A time that UTC cannot hold (a device clock at 0001-01-01+14:00) is clamped to
        the calendar's edge: the closure itself is never lost for its time.
        """
        try:
            closed_at = closed_at.astimezone(UTC)
        except (OverflowError, ValueError):
            edge = datetime.min if closed_at.year < 2000 else datetime.max
            closed_at = edge.replace(tzinfo=UTC)
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, reason.encode(), f"closure:{case_id}".encode())
        with self._write_lock, self.session() as s:
            if s.get(ClosureRow, case_id) is not None:
                return False
            s.add(ClosureRow(case_id=case_id, event_id=event_id, closed_at=closed_at, blob=blob))
            s.add(AuditRow(at=utcnow(), actor="platform", action="case_closed", case_id=case_id))
            s.commit()
        return True

    def closures(self, case_ids: list[str]) -> dict[str, tuple[str, datetime]]:
        """Case id -> (reason, closed at) for the closed ones among ``case_ids``."""
        if not case_ids:
            return {}
        with self.session() as s:
            rows = s.exec(select(ClosureRow).where(col(ClosureRow.case_id).in_(case_ids))).all()
        out = {}
        for r in rows:
            reason = self._aead.decrypt(r.blob[:12], r.blob[12:], f"closure:{r.case_id}".encode())
            out[r.case_id] = (reason.decode(), _aware(r.closed_at) or r.closed_at)
        return out

    def mark_exported(self, case_id: str, where: str) -> None:
        with self._write_lock, self.session() as s:
            row = s.get(CaseRow, case_id)
            if row is None:
                return
            row.exported_at = utcnow()
            s.add(row)
            s.add(
                AuditRow(
                    at=utcnow(),
                    actor="exporter",
                    action="case_exported",
                    case_id=case_id,
                    detail=where[:400],
                )
            )
            s.commit()

    def purge(self, older_than_seconds: int, *, actor: str = "retention") -> int:
        """Delete opened cases received more than ``older_than_seconds`` ago; return how many."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self._write_lock, self.session() as s:
            ids = list(
                s.exec(select(CaseRow.case_id).where(col(CaseRow.received_at) <= cutoff)).all()
            )
            # Envelopes held for a key that never came: not kept past the retention either.
            s.exec(
                update(Rejection)
                .where(col(Rejection.at) <= cutoff, col(Rejection.envelope).is_not(None))
                .values(envelope=None)
            )
            s.commit()
            if ids:
                s.exec(delete(CaseRow).where(col(CaseRow.case_id).in_(ids)))
                s.exec(delete(ClosureRow).where(col(ClosureRow.case_id).in_(ids)))
                for cid in ids:
                    s.add(AuditRow(at=utcnow(), actor=actor, action="case_purged", case_id=cid))
                s.commit()
        return len(ids)

    def unexported(self, limit: int = 100) -> list[CaseRow]:
        with self.session() as s:
            return list(
                s.exec(
                    select(CaseRow)
                    .where(col(CaseRow.exported_at).is_(None))
                    .order_by(col(CaseRow.received_at))
                    .limit(limit)
                ).all()
            )

    def drop_expired_sessions(self) -> int:
        now = utcnow()
        with self._write_lock, self.session() as s:
            rows = s.exec(select(StaffSession).where(col(StaffSession.expires_at) <= now)).all()
            for row in rows:
                s.delete(row)
            s.commit()
        return len(rows)

    # -- audit ------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        *,
        case_id: str | None = None,
        detail: str = "",
        client: str | None = None,
        session: Session | None = None,
    ) -> None:
        row = AuditRow(
            at=utcnow(),
            actor=actor[:80],
            action=action,
            case_id=case_id,
            detail=detail[:400],
            client=(client or None) and client[:64],
        )
        if session is not None:
            session.add(row)
            return
        with self.session() as s:
            s.add(row)
            s.commit()

    def audit_views(self, actor: str, case_ids: list[str], client: str | None) -> None:
        if not case_ids:
            return
        with self.session() as s:
            now = utcnow()
            for cid in case_ids:
                s.add(
                    AuditRow(at=now, actor=actor, action="case_viewed", case_id=cid, client=client)
                )
            s.commit()

    def audit_rows(self, action: str | None = None) -> list[AuditRow]:
        with self.session() as s:
            q = select(AuditRow).order_by(col(AuditRow.id))
            if action is not None:
                q = q.where(AuditRow.action == action)
            return list(s.exec(q).all())
