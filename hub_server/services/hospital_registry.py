"""The hospitals the hub knows: registration (by an operator or with a one-time token)
and the signed directory devices choose from (nearest first). Each write is audited."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from sqlmodel import Session, col, select

from hub_server import crud
from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import InvalidInput
from hub_server.core.state import HubState
from hub_server.crud.availability import check_region, direct_regions, visible_regions
from hub_server.crud.identities.keys import check_xwing_key, key_kinds
from hub_server.models import Hospital
from hub_server.schemas import (
    DirectAddressPublic,
    DirectAddressSet,
    DirectoryBody,
    DirectoryEntry,
    HospitalCreate,
    HospitalCreated,
    HospitalEnrolled,
    HospitalEnrollRequest,
    HospitalKeyKinds,
    HospitalKeyKindsPage,
    HospitalKeyPublish,
    HospitalKeysPublic,
    HospitalTokenCreate,
    HospitalTokenPublic,
    SignedDirectory,
)

__all__ = [
    "create_hospital_token",
    "enroll_hospital",
    "hospital_key_kinds",
    "publish_hybrid_key",
    "register_hospital",
    "set_direct_address",
    "signed_directory",
]


def register_hospital(session: Session, *, actor: str, body: HospitalCreate) -> HospitalCreated:
    """An operator registers a hospital with its public keys and location."""
    now = utcnow()
    hospital = crud.create_hospital(
        session,
        name=body.name,
        lat=body.lat,
        lon=body.lon,
        hpke_public_key=body.hpke_public_key,
        xwing_public_key=body.xwing_public_key,
        signing_public_key=body.signing_public_key,
        now=now,
        region=check_region(session, body.region),
    )
    append_audit(
        session,
        actor=actor,
        action="hospital_registered",
        subject=f"hospital:{hospital.id}",
        details={
            "name": hospital.name,
            "region": hospital.region,
            "key_kinds": key_kinds(hospital.xwing_public_key),
        },
        now=now,
    )
    session.commit()
    return HospitalCreated(hospital_id=hospital.id)


def create_hospital_token(
    hub: HubState, session: Session, *, actor: str, body: HospitalTokenCreate
) -> HospitalTokenPublic:
    """A one-time token with which one hospital registers its own keys and location."""
    now = utcnow()
    token, row = crud.create_hospital_token(
        session,
        name=body.name,
        created_by=actor,
        ttl=timedelta(seconds=hub.settings.enrollment_token_ttl_seconds),
        now=now,
        region=check_region(session, body.region),
    )
    append_audit(
        session,
        actor=actor,
        action="hospital_token_created",
        subject=f"hospital_name:{body.name}"[:120],
        details={"expires_at": row.expires_at.isoformat()},
        now=now,
    )
    session.commit()
    return HospitalTokenPublic(token=token, expires_at=row.expires_at, name=row.name)


def enroll_hospital(session: Session, body: HospitalEnrollRequest) -> HospitalEnrolled:
    """Redeem an operator's token once with the hospital's own public keys."""
    now = utcnow()
    hospital = crud.redeem_hospital_token(
        session,
        token=body.token,
        lat=body.lat,
        lon=body.lon,
        hpke_public_key=body.hpke_public_key,
        xwing_public_key=body.xwing_public_key,
        signing_public_key=body.signing_public_key,
        now=now,
    )
    append_audit(
        session,
        actor=f"hospital:{hospital.id}",
        action="hospital_enrolled",
        subject=f"hospital:{hospital.id}",
        details={"name": hospital.name, "key_kinds": key_kinds(hospital.xwing_public_key)},
        now=now,
    )
    session.commit()
    return HospitalEnrolled(hospital_id=hospital.id, name=hospital.name)


def signed_directory(
    hub: HubState,
    session: Session,
    *,
    lat: float,
    lon: float,
    limit: int,
    region: str | None = None,
    staff: bool = False,
) -> SignedDirectory:
    """Hospitals nearest first, signed by the hub key (devices check it offline): for a
    device those of the regions it sees (``region``: its own), for staff all."""
    seen = None if staff else visible_regions(session, region)
    ranked = crud.hospitals_nearest(session, lat=lat, lon=lon, limit=limit, regions=seen)
    direct = direct_regions(session)

    def entry(h: Hospital, distance_km: float) -> DirectoryEntry:
        # Opt-in per region (the operator's setting): no region, no direct route.
        opted_in = h.region in direct and bool(h.direct_url and h.direct_tls_cert)
        return DirectoryEntry(
            id=h.id,
            name=h.name,
            lat=h.lat,
            lon=h.lon,
            distance_km=round(distance_km, 3),
            hpke_public_key=h.hpke_public_key,
            key_kinds=key_kinds(h.xwing_public_key),
            xwing_public_key=h.xwing_public_key,
            signing_public_key=h.signing_public_key,
            region=h.region,
            direct_url=h.direct_url if opted_in else None,
            direct_tls_cert=h.direct_tls_cert if opted_in else None,
        )

    body = DirectoryBody(
        issued_at=utcnow().isoformat(),
        lat=lat,
        lon=lon,
        require_pq=hub.settings.require_pq,
        hospitals=[entry(h, d) for h, d in ranked],
    )
    return SignedDirectory.model_validate(
        hub.hub_key.sign_document("directory", body.model_dump(mode="json"))
    )


def set_direct_address(
    session: Session, *, hospital: Hospital, body: DirectAddressSet
) -> DirectAddressPublic:
    """The hospital registers (or changes) its direct-delivery address and TLS certificate;
    audited ``direct_address_set`` (the address, not the certificate)."""
    try:
        x509.load_pem_x509_certificate(body.tls_cert.strip().encode())
    except ValueError:
        # Devices pin this certificate: one they cannot load would stop the direct route.
        raise InvalidInput(
            "invalid_tls_cert",
            "tls_cert is not a PEM X.509 certificate",
            "直接送信の TLS 証明書を読み取れません。証明書ファイル (PEM) を確認してください。",
        ) from None
    now = utcnow()
    hospital.direct_url = body.url
    hospital.direct_tls_cert = body.tls_cert.strip() + "\n"
    session.add(hospital)
    append_audit(
        session,
        actor=f"hospital:{hospital.id}",
        action="direct_address_set",
        subject=f"hospital:{hospital.id}",
        details={"url": body.url},
        now=now,
    )
    session.commit()
    return DirectAddressPublic(hospital_id=hospital.id, url=body.url)


def publish_hybrid_key(
    session: Session, *, hospital: Hospital, body: HospitalKeyPublish
) -> HospitalKeysPublic:
    """The hospital publishes (or replaces) its hybrid (X-Wing) public key; from the next
    directory on, devices seal v2 to it. Its X25519 key stays (v1 cases in flight).
    Audited ``hospital_key_published`` (the kind, never the key)."""
    now = utcnow()
    hospital.xwing_public_key = check_xwing_key(body.xwing_public_key)
    session.add(hospital)
    kinds = key_kinds(hospital.xwing_public_key)
    append_audit(
        session,
        actor=f"hospital:{hospital.id}",
        action="hospital_key_published",
        subject=f"hospital:{hospital.id}",
        details={"kind": "xwing", "key_kinds": kinds},
        now=now,
    )
    session.commit()
    return HospitalKeysPublic(hospital_id=hospital.id, key_kinds=kinds)


def hospital_key_kinds(
    hub: HubState, session: Session, *, without_pq: bool = False
) -> HospitalKeyKindsPage:
    """For the operator: every hospital (revoked ones too, marked) and the key kinds it
    published; ``without_pq``: only those still without a hybrid key (devices seal v1 to
    them, or, under ``require_pq``, reach them by phone only)."""
    q = select(Hospital).order_by(col(Hospital.name), col(Hospital.id))
    if without_pq:
        q = q.where(col(Hospital.xwing_public_key).is_(None))
    rows = [
        HospitalKeyKinds(
            id=h.id,
            name=h.name,
            region=h.region,
            key_kinds=key_kinds(h.xwing_public_key),
            revoked=h.revoked,
        )
        for h in session.exec(q).all()
    ]
    return HospitalKeyKindsPage(require_pq=hub.settings.require_pq, hospitals=rows)
