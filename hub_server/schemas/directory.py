"""The hub-signed hospital directory."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["DirectoryBody", "DirectoryEntry", "SignedDirectory"]


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
