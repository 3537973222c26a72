"""Request and response bodies of the HTTP API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AckPublic",
    "AnswerCreate",
    "AnswerPublic",
    "AuditEntryPublic",
    "AuditPage",
    "AvailabilityDoc",
    "AvailabilityItemSet",
    "AvailabilityPage",
    "AvailabilitySet",
    "CaseCreate",
    "CaseCreated",
    "CaseRecipientStatus",
    "CaseStatus",
    "ChallengePublic",
    "CheckpointBody",
    "CrlIngest",
    "CrlIngested",
    "DestinationCreate",
    "DestinationPublic",
    "DevicePublic",
    "DirectoryBody",
    "DirectoryEntry",
    "EnrollRequest",
    "EnrollResponse",
    "EnrollmentTokenCreate",
    "EnrollmentTokenPublic",
    "ErrorBody",
    "ErrorDetail",
    "Evidence",
    "HistoryEntry",
    "HistoryRequest",
    "HistoryResponse",
    "HospitalCreate",
    "HospitalCreated",
    "HubKeyPublic",
    "IdentityRevoked",
    "OperatorCreate",
    "OperatorPublic",
    "RefusedCaseCreate",
    "RefusedCasePage",
    "RefusedCasePublic",
    "RegionPublic",
    "RegionSet",
    "RevocationSnapshotBody",
    "RevokeRequest",
    "SignedCheckpoint",
    "SignedDirectory",
    "SignedSnapshot",
    "SummaryRequest",
    "SummaryResponse",
]

Id = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
# Free text: anything but NUL (PostgreSQL text cannot hold it).
TEXT = r"^[^\x00]*$"
HospitalId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Ed25519Key = Field(
    min_length=43,
    max_length=44,
    pattern=r"^[A-Za-z0-9_-]{43}=?$",
    description="32-byte Ed25519 public key, base64url",
)
RegionCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
Region = Field(
    default=None,
    min_length=1,
    max_length=40,
    pattern=r"^[A-Za-z0-9_.-]+$",
    description="the region (a prefecture or MC area code) the operator puts it in",
)
X25519Key = Field(
    min_length=43,
    max_length=44,
    pattern=r"^[A-Za-z0-9_-]{43}=?$",
    description="32-byte X25519 public key (HPKE), base64url",
)
XWingKey = Field(
    default=None,
    min_length=1622,
    max_length=1622,
    pattern=r"^[A-Za-z0-9_-]{1622}$",
    description="1,216-byte X-Wing (MLKEM768-X25519) public key (HPKE, envelope v2), base64url",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message_ja: str
    message_en: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class OperatorCreate(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    role: Literal["operator", "technician"]
    public_key: str = Ed25519Key
    fire_department: str | None = Field(default=None, min_length=1, max_length=200, pattern=TEXT)


class OperatorPublic(BaseModel):
    id: str
    name: str
    role: str
    fire_department: str | None


class EnrollmentTokenCreate(_Strict):
    fire_department: str = Field(min_length=1, max_length=200, pattern=TEXT)
    region: str | None = Region


class EnrollmentTokenPublic(BaseModel):
    token: str
    expires_at: datetime
    fire_department: str


class EnrollRequest(_Strict):
    token: str = Field(min_length=1, max_length=200, pattern=TEXT)
    public_key: str = Ed25519Key
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)


class EnrollResponse(BaseModel):
    device_id: str
    fire_department: str


class DevicePublic(BaseModel):
    id: str
    name: str
    fire_department: str
    revoked: bool


class RevokeRequest(_Strict):
    reason: str | None = Field(default=None, max_length=200, pattern=TEXT)


class IdentityRevoked(BaseModel):
    key_id: str
    kind: str
    revoked: bool


class HospitalCreate(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    hpke_public_key: str = X25519Key
    xwing_public_key: str | None = XWingKey
    signing_public_key: str = Ed25519Key
    region: str | None = Region


class HospitalCreated(BaseModel):
    hospital_id: str


class HospitalTokenCreate(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    region: str | None = Region


class HospitalTokenPublic(BaseModel):
    token: str
    expires_at: datetime
    name: str


class HospitalEnrollRequest(_Strict):
    """A hospital registers itself with an operator's one-time token (unsigned: no key yet)."""

    token: str = Field(min_length=1, max_length=200, pattern=TEXT)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    hpke_public_key: str = X25519Key
    xwing_public_key: str | None = XWingKey
    signing_public_key: str = Ed25519Key


class HospitalEnrolled(BaseModel):
    hospital_id: str
    name: str


class DirectoryEntry(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    distance_km: float
    hpke_public_key: str
    # The key kinds it published ("x25519", "xwing"): a device seals v2 when every
    # recipient has "xwing" (docs/envelope.md).
    key_kinds: list[str]
    xwing_public_key: str | None = None
    signing_public_key: str
    region: str | None = None
    # The direct route (docs/disaster.md), only when the hospital's region opted in and
    # the hospital registered its address: HTTPS, and the certificate devices pin.
    direct_url: str | None = None
    direct_tls_cert: str | None = None


class DirectoryBody(BaseModel):
    issued_at: str
    lat: float
    lon: float
    # KYUKYU_HUB_REQUIRE_PQ: the platform refuses v1 envelopes; a device seals v2 only and
    # shows a hospital without a hybrid key as reachable by phone only (要電話).
    require_pq: bool = False
    hospitals: list[DirectoryEntry]


class SignedDirectory(BaseModel):
    """``signature`` = base64url Ed25519 by the hub key over canonical JSON of ``directory``."""

    directory: DirectoryBody
    key_id: str
    signature: str


class HubKeyPublic(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str


class ChallengePublic(BaseModel):
    challenge_id: str
    nonce: str = Field(description="32 random bytes, base64url: the card signs these bytes")
    expires_at: datetime


class Evidence(_Strict):
    kind: Literal["face_check", "pin_signature", "collation_b"]
    challenge_id: str | None = Field(default=None, max_length=40, pattern=TEXT)
    signature: str | None = Field(
        default=None, max_length=2048, description="card auth-key signature, base64"
    )


class SummaryRequest(_Strict):
    certificate: str = Field(
        min_length=1, max_length=8192, description="user-authentication certificate, base64 DER"
    )
    consent: Literal["consented", "unconscious", "refused"]
    evidence: Evidence
    crew_member: str = Field(min_length=1, max_length=100, pattern=TEXT)


class SummaryResponse(BaseModel):
    status: Literal["found", "not_found", "refused"]
    assurance: str
    bundle: dict[str, Any] | None = None


class CaseCreate(_Strict):
    case_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")
    recipients: list[HospitalId] = Field(min_length=1, max_length=64)
    envelope: str = Field(min_length=1, description="sealed case bytes, base64 (opaque)")


class DirectReceipt(_Strict):
    """A case a device delivered to this hospital directly (docs/disaster.md): the sealed
    envelope exactly as the device sent it (base64, as in ``CaseCreate``)."""

    case_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")
    device_id: str = Field(min_length=1, max_length=40)
    envelope: str = Field(min_length=1, description="the device's sealed case, base64")


class CaseCreated(BaseModel):
    case_id: str
    recipients: list[str]
    created_at: datetime


class CaseRecipientStatus(BaseModel):
    hospital_id: str
    acked: bool
    answer: str | None
    answered_at: datetime | None


class CaseStatus(BaseModel):
    case_id: str
    created_at: datetime
    destination_hospital_id: str | None
    purged: bool
    recipients: list[CaseRecipientStatus]


class AckPublic(BaseModel):
    case_id: str
    hospital_id: str
    acked_at: datetime


class AnswerCreate(_Strict):
    answer: Literal["accept", "decline"]
    reason: str | None = Field(default=None, max_length=500, pattern=TEXT)


class AnswerPublic(BaseModel):
    case_id: str
    hospital_id: str
    answer: str
    answered_at: datetime


class DestinationCreate(_Strict):
    hospital_id: str = Id
    via: Literal["answer", "phone"] = Field(
        default="answer",
        description="answer: the hospital answered accept (checked); phone: the crew "
        "confirmed the acceptance by phone",
    )


class DestinationPublic(BaseModel):
    case_id: str
    hospital_id: str
    via: str


class ClosureCreate(_Strict):
    recipients: list[HospitalId] = Field(min_length=1, max_length=64)
    envelope: str = Field(min_length=1, max_length=65536, description="sealed closure, base64")


class ClosurePublic(BaseModel):
    case_id: str
    recipients: list[str]
    closed_at: datetime


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


class HistoryRequest(_Strict):
    certificate: str = Field(min_length=1, max_length=8192)
    challenge_id: str = Field(min_length=1, max_length=40, pattern=TEXT)
    signature: str = Field(min_length=1, max_length=2048)


class HistoryEntry(BaseModel):
    at: datetime
    action: str
    device_id: str
    device_name: str | None
    fire_department: str | None
    crew_member: str | None
    consent: str | None
    evidence: str | None
    outcome: str | None


class HistoryResponse(BaseModel):
    entries: list[HistoryEntry]


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


class DeviceKeyBody(BaseModel):
    """A device's enrolled signing key, as hospitals need it to check sealed cases."""

    device_id: str
    public_key: str = Field(description="Ed25519, 32 bytes, base64url")
    fire_department: str
    revoked: bool
    revoked_at: datetime | None
    issued_at: str


class RosterDevice(BaseModel):
    id: str
    public_key: str = Field(description="Ed25519, 32 bytes, base64url")
    fire_department: str
    revoked: bool


class RosterBody(BaseModel):
    """Every enrolled device, for hospitals to trust a device without the platform.

    ``version`` only grows (each enrollment and each revocation adds one): a hospital
    refuses a roster older than the one it holds (docs/disaster.md)."""

    format: str = "kyukyu-roster-v1"
    version: int
    issued_at: str
    devices: list[RosterDevice]


class SignedRoster(BaseModel):
    """``signature`` = base64url Ed25519 by the hub key over canonical JSON of ``roster``."""

    roster: RosterBody
    key_id: str
    signature: str


class DirectAddressSet(_Strict):
    """A hospital's direct-delivery address: ``https://`` and its TLS certificate (PEM)."""

    url: str = Field(
        min_length=9, max_length=300, pattern=r"^https://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._~/-]*)?$"
    )
    tls_cert: str = Field(
        min_length=100,
        max_length=8000,
        pattern=r"^-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*$",
    )


class HospitalKeyPublish(_Strict):
    """A hospital publishes its hybrid (X-Wing) public key (``kyukyu hospital keys rotate``)."""

    xwing_public_key: str = Field(
        min_length=1622,
        max_length=1622,
        pattern=r"^[A-Za-z0-9_-]{1622}$",
        description="1,216-byte X-Wing public key, base64url",
    )


class HospitalKeysPublic(BaseModel):
    hospital_id: str
    key_kinds: list[str]


class HospitalKeyKinds(BaseModel):
    """One hospital in the operator's list: which key kinds it published."""

    id: str
    name: str
    region: str | None
    key_kinds: list[str]
    revoked: bool


class HospitalKeyKindsPage(BaseModel):
    require_pq: bool
    hospitals: list[HospitalKeyKinds]


class DirectAddressPublic(BaseModel):
    hospital_id: str
    url: str


class SignedDeviceKey(BaseModel):
    """``signature`` = base64url Ed25519 by the hub key over canonical JSON of ``device``."""

    device: DeviceKeyBody
    key_id: str
    signature: str


class RefusedCaseCreate(_Strict):
    """A hospital refused the case of one of its events: the event number, the posting
    device as the event named it, and the refusal's code. Never any content."""

    event_id: int = Field(ge=1, le=2**53, description="the hospital's stream event number")
    device_id: str | None = Field(
        default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$"
    )
    code: str = Field(
        min_length=1,
        max_length=60,
        pattern=r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?$",
        description="e.g. case_not_bundle, envelope_bad_signature, closure:envelope_malformed",
    )


class RefusedCasePublic(BaseModel):
    id: int
    hospital_id: str
    event_id: int
    case_id: str
    device_id: str | None
    code: str
    reported_at: datetime


class RefusedCasePage(BaseModel):
    reports: list[RefusedCasePublic]


# -- 応需状況 and regions (docs/availability.md) -------------------------------------------


class AvailabilityItemSet(_Strict):
    """One department's or capability's status (``clear``: remove it, shown 不明)."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    status: Literal["available", "consult", "unavailable", "clear"]
    note: str | None = Field(default=None, max_length=100, pattern=TEXT)
    expires_at: datetime | None = Field(default=None, description="required unless clear")
    count: int | None = Field(default=None, ge=0, le=10_000, description="ICU 空床数 only")


class AvailabilitySet(_Strict):
    items: list[AvailabilityItemSet] = Field(min_length=1, max_length=40)


class AvailabilityDoc(BaseModel):
    """A hospital's newest document (``sync.availability``: ``items`` code -> status)."""

    hospital_id: str
    name: str | None = None
    region: str | None = None
    version: int
    updated_at: str
    items: dict[str, dict[str, Any]]


class AvailabilityPage(BaseModel):
    """Documents newer than ``after``; ``version``: the platform's counter when read (ask
    again with ``after=version``); ``regions``: the regions the caller sees (None: all)."""

    version: int
    regions: list[str] | None
    hospitals: list[AvailabilityDoc]


class RegionSet(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT)
    neighbours: list[RegionCode] = Field(default_factory=list, max_length=50)
    # 災害時の直接送信: the region's hospitals' direct addresses go into the directory.
    direct_route: bool = False


class RegionPublic(BaseModel):
    code: str
    name: str
    neighbours: list[str]
    direct_route: bool = False
