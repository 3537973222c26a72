"""Operators, devices and hospitals: enrollment, tokens, keys, revocation, the device
roster and the device key documents."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from hub_server.schemas._base import TEXT, Ed25519Key, Region, X25519Key, XWingKeyText, _Strict

__all__ = [
    "DeviceKeyBody",
    "DevicePublic",
    "DirectAddressPublic",
    "DirectAddressSet",
    "EnrollRequest",
    "EnrollResponse",
    "EnrollmentTokenCreate",
    "EnrollmentTokenPublic",
    "HospitalCreate",
    "HospitalCreated",
    "HospitalEnrollRequest",
    "HospitalEnrolled",
    "HospitalKeyKinds",
    "HospitalKeyKindsPage",
    "HospitalKeyPublish",
    "HospitalKeysPublic",
    "HospitalTokenCreate",
    "HospitalTokenPublic",
    "HubKeyPublic",
    "IdentityRevoked",
    "OperatorCreate",
    "OperatorPublic",
    "RevokeRequest",
    "RosterBody",
    "RosterDevice",
    "SignedDeviceKey",
    "SignedRoster",
]


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
    xwing_public_key: XWingKeyText | None = None
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
    xwing_public_key: XWingKeyText | None = None
    signing_public_key: str = Ed25519Key


class HospitalEnrolled(BaseModel):
    hospital_id: str
    name: str


class HubKeyPublic(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str


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

    ``version`` only grows (each enrollment and each revocation adds one, a restore its
    event gap: ``services.device_roster``): a hospital refuses a roster older than the
    one it holds (docs/disaster.md)."""

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

    xwing_public_key: XWingKeyText


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
