"""Database tables (SQLModel). API request/response shapes live in ``schemas``.

All datetimes are aware UTC (sqlmodel's UTCDateTime, the same on SQLite and
PostgreSQL). Sealed cases are stored as ciphertext only; the hub never holds a
key that opens them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

__all__ = [
    "AuditEntry",
    "AuditHead",
    "AuditPending",
    "AvailabilityHead",
    "Case",
    "CaseRecipient",
    "Challenge",
    "Device",
    "EnrollmentToken",
    "Event",
    "Hospital",
    "HospitalAvailability",
    "IdempotencyRecord",
    "Nonce",
    "Operator",
    "RefusedCaseReport",
    "Region",
    "RevocationVersion",
    "RevokedSerial",
]


class EnrollmentToken(SQLModel, table=True):
    __tablename__ = "enrollment_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    fire_department: str = Field(max_length=200)
    created_by: str = Field(max_length=80)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    device_id: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=40)


class HospitalEnrollmentToken(SQLModel, table=True):
    """A one-time token an operator issues for one hospital (name fixed by the operator)."""

    __tablename__ = "hospital_enrollment_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    created_by: str = Field(max_length=80)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    hospital_id: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=40)


class Device(SQLModel, table=True):
    __tablename__ = "devices"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    fire_department: str = Field(max_length=200)
    public_key: str = Field(max_length=64)
    revoked: bool = False
    revoked_at: datetime | None = None
    created_at: datetime
    event_seq: int = 0
    region: str | None = Field(default=None, max_length=40)  # set by the operator


class Hospital(SQLModel, table=True):
    __tablename__ = "hospitals"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    lat: float
    lon: float
    hpke_public_key: str = Field(max_length=64)
    # The hybrid (X-Wing, MLKEM768-X25519) public key envelope v2 is sealed to: 1,216
    # bytes, base64url (docs/envelope.md); None for a hospital that has not published one.
    xwing_public_key: str | None = Field(default=None, sa_type=Text)
    signing_public_key: str = Field(max_length=64)
    revoked: bool = False
    created_at: datetime
    event_seq: int = 0
    region: str | None = Field(default=None, max_length=40)  # set by the operator
    # The direct route (docs/disaster.md): the hospital's own HTTPS address and the TLS
    # certificate devices pin for it, registered by the hospital.
    direct_url: str | None = Field(default=None, max_length=300)
    direct_tls_cert: str | None = Field(default=None, sa_type=Text)


class Operator(SQLModel, table=True):
    """Platform operators and fire-department technicians (``role``)."""

    __tablename__ = "operators"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    fire_department: str | None = Field(default=None, max_length=200)
    public_key: str = Field(max_length=64)
    revoked: bool = False
    created_at: datetime


class Nonce(SQLModel, table=True):
    """Replay store shared by every hub process: the primary key refuses a reuse."""

    __tablename__ = "nonces"

    key_id: str = Field(primary_key=True, max_length=80)
    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True)


class Case(SQLModel, table=True):
    __tablename__ = "cases"

    id: str = Field(primary_key=True, max_length=80)
    device_id: str = Field(max_length=40, index=True)
    envelope: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    envelope_size: int
    created_at: datetime = Field(index=True)
    destination_hospital_id: str | None = Field(default=None, max_length=40)
    destination_at: datetime | None = None
    purged_at: datetime | None = None


class CaseRecipient(SQLModel, table=True):
    __tablename__ = "case_recipients"

    case_id: str = Field(primary_key=True, max_length=80, foreign_key="cases.id")
    hospital_id: str = Field(primary_key=True, max_length=40, foreign_key="hospitals.id")
    event_seq: int
    acked_at: datetime | None = None
    answer: str | None = Field(default=None, max_length=20)
    answer_reason: str | None = Field(default=None, max_length=500)
    answered_at: datetime | None = None


class Event(SQLModel, table=True):
    """Per-recipient numbered event log (``recipient`` is ``hospital:<id>``/``device:<id>``)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("recipient", "seq", name="uq_events_recipient_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=60)
    seq: int
    kind: str = Field(max_length=20)
    case_id: str = Field(max_length=80, index=True)
    payload: str = Field(sa_type=Text)
    created_at: datetime


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"

    owner: str = Field(primary_key=True, max_length=80)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=20)
    response_status: int | None = None
    response_body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(index=True)


class AuditEntry(SQLModel, table=True):
    """Append-only, hash-chained: ``hash = sha256(prev_hash || canonical(row))``."""

    __tablename__ = "audit"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    subject: str = Field(max_length=120)
    patient_ref: str | None = Field(default=None, max_length=64, index=True)
    details: str = Field(sa_type=Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the chain's last sequence number and hash (also the writers' lock)."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    hash: str = Field(max_length=64)


class AuditPending(SQLModel, table=True):
    """An audit row written with its action, not yet in the chain: every row enters here.

    ``core.audit.chain_pending`` moves these rows into ``audit`` under the head lock:
    at once for ``append_audit``, in batches after the commit for cases on PostgreSQL
    (so concurrent cases do not queue on that lock one by one).
    """

    __tablename__ = "audit_pending"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    actor: str = Field(max_length=80)
    action: str = Field(max_length=40)
    subject: str = Field(max_length=120)
    patient_ref: str | None = Field(default=None, max_length=64)
    details: str = Field(sa_type=Text)


class Challenge(SQLModel, table=True):
    __tablename__ = "challenges"

    id: str = Field(primary_key=True, max_length=40)
    nonce: str = Field(max_length=64)
    purpose: str = Field(max_length=20)
    device_id: str | None = Field(default=None, max_length=40)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    used_at: datetime | None = None


class RevocationVersion(SQLModel, table=True):
    __tablename__ = "revocation_versions"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    ingested_at: datetime
    this_update: datetime | None = None
    issuer: str = Field(max_length=300)
    # The CRLNumber extension (up to 20 octets, so decimal text); None when absent.
    crl_number: str | None = Field(default=None, max_length=50)
    revoked_count: int


class RevokedSerial(SQLModel, table=True):
    __tablename__ = "revoked_serials"
    __table_args__ = (Index("ix_revoked_serials_versions", "added_version", "removed_version"),)

    issuer: str = Field(primary_key=True, max_length=16)  # sha256(issuer name DER)[:16]
    serial: str = Field(primary_key=True, max_length=80)  # lowercase hex
    added_version: int
    removed_version: int | None = None


class RefusedCaseReport(SQLModel, table=True):
    """A hospital's report that it refused a case it was sent (it could not open, read or
    store it): the code only, never content. One per hospital and event; the case and the
    posting device are the hub's own record of that event, not the hospital's word."""

    __tablename__ = "refused_case_reports"
    __table_args__ = (
        UniqueConstraint("hospital_id", "event_seq", name="uq_refused_case_reports_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: str = Field(max_length=40)
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    case_id: str = Field(max_length=80, index=True)
    device_id: str | None = Field(default=None, max_length=40)
    code: str = Field(max_length=60)
    reported_at: datetime = Field(index=True)


class Region(SQLModel, table=True):
    """A region (a prefecture or メディカルコントロール area) and the regions whose
    hospitals its devices also see (``neighbours``: a JSON list of codes, set by the
    operator; directed: A listing B shows B's hospitals to A's devices)."""

    __tablename__ = "regions"

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    neighbours: str = Field(default="[]", sa_type=Text)
    updated_at: datetime
    # The operator's opt-in: its hospitals' direct addresses go into the signed directory.
    direct_route: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class HospitalAvailability(SQLModel, table=True):
    """A hospital's newest 応需状況 document (``items``: JSON, see ``sync.availability``);
    ``version`` comes from ``AvailabilityHead``, so versions grow in commit order."""

    __tablename__ = "hospital_availability"

    hospital_id: str = Field(primary_key=True, max_length=40, foreign_key="hospitals.id")
    region: str | None = Field(default=None, max_length=40, index=True)
    version: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    updated_at: datetime
    items: str = Field(sa_type=Text)


class AvailabilityHead(SQLModel, table=True):
    """One row: the last availability version (its row lock orders the writers)."""

    __tablename__ = "availability_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int = Field(sa_column=Column(BigInteger, nullable=False))


class Incident(SQLModel, table=True):
    """A mass-casualty incident (多数傷病者, docs/mass-casualty.md): what the platform holds
    in clear is operational (place, kind, time, the declaring team), never patient data."""

    __tablename__ = "incidents"

    id: str = Field(primary_key=True, max_length=40)
    region: str | None = Field(default=None, max_length=40, index=True)
    place: str = Field(max_length=200)
    kind: str = Field(max_length=40)
    estimated_count: int
    team: str = Field(max_length=200)
    device_id: str = Field(max_length=40)
    declared_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = Field(default=None, max_length=80)


class IncidentHospital(SQLModel, table=True):
    """A hospital alerted of an incident, and how many it said it can take per START
    category (None: not answered yet)."""

    __tablename__ = "incident_hospitals"

    incident_id: str = Field(primary_key=True, max_length=40, foreign_key="incidents.id")
    hospital_id: str = Field(primary_key=True, max_length=40, foreign_key="hospitals.id")
    red: int | None = None
    yellow: int | None = None
    green: int | None = None
    answered_at: datetime | None = None


class IncidentPatient(SQLModel, table=True):
    """A triage tag of an incident: its category and, once assigned, its hospital and the
    sealed case sent there (age, sex, injury travel only inside that case)."""

    __tablename__ = "incident_patients"

    incident_id: str = Field(primary_key=True, max_length=40, foreign_key="incidents.id")
    tag: str = Field(primary_key=True, max_length=40)
    category: str = Field(max_length=10)
    device_id: str = Field(max_length=40)
    registered_at: datetime
    hospital_id: str | None = Field(default=None, max_length=40, index=True)
    case_id: str | None = Field(default=None, max_length=80)
    assigned_at: datetime | None = None
    acceptance: str | None = Field(default=None, max_length=30)
