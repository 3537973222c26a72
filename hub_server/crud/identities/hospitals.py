"""Hospitals: registered by an operator or with an operator's one-time token, and the
nearest ones to a place."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from hub_server.core.security import new_id
from hub_server.crud.identities.geo import distance_km
from hub_server.crud.identities.keys import check_hpke_key, check_signing_key, check_xwing_key
from hub_server.crud.identities.tokens import HOSPITAL, issue_token, open_token, spend_token
from hub_server.models import Hospital, HospitalEnrollmentToken

__all__ = [
    "create_hospital",
    "create_hospital_token",
    "hospitals_nearest",
    "redeem_hospital_token",
]


def create_hospital(
    session: Session,
    *,
    name: str,
    lat: float,
    lon: float,
    hpke_public_key: str,
    signing_public_key: str,
    now: datetime,
    region: str | None = None,
    xwing_public_key: str | None = None,
) -> Hospital:
    hospital = Hospital(
        region=region,
        id=new_id(),
        name=name,
        lat=lat,
        lon=lon,
        hpke_public_key=check_hpke_key(hpke_public_key),
        xwing_public_key=check_xwing_key(xwing_public_key),
        signing_public_key=check_signing_key(signing_public_key),
        created_at=now,
    )
    session.add(hospital)
    return hospital


def create_hospital_token(
    session: Session,
    *,
    name: str,
    created_by: str,
    ttl: timedelta,
    now: datetime,
    region: str | None = None,
) -> tuple[str, HospitalEnrollmentToken]:
    """A one-time token for one hospital; the operator fixes its name and region (shown once)."""
    return issue_token(
        session, HOSPITAL, created_by=created_by, ttl=ttl, now=now, name=name, region=region
    )


def redeem_hospital_token(
    session: Session,
    *,
    token: str,
    lat: float,
    lon: float,
    hpke_public_key: str,
    signing_public_key: str,
    now: datetime,
    xwing_public_key: str | None = None,
) -> Hospital:
    """Register the hospital with its own keys; a used, expired or unknown token is 401."""
    row = open_token(session, HOSPITAL, token=token, now=now)
    hospital = create_hospital(
        session,
        name=row.name,
        lat=lat,
        lon=lon,
        hpke_public_key=hpke_public_key,
        signing_public_key=signing_public_key,
        now=now,
        region=row.region,
        xwing_public_key=xwing_public_key,
    )
    spend_token(session, HOSPITAL, row, used_by=hospital.id, now=now)
    return hospital


def hospitals_nearest(
    session: Session,
    *,
    lat: float,
    lon: float,
    limit: int,
    regions: frozenset[str] | None = None,
) -> list[tuple[Hospital, float]]:
    """The nearest unrevoked hospitals; ``regions``: only those in them or in no region
    (None: all)."""
    q = select(Hospital).where(col(Hospital.revoked).is_(False))
    if regions is not None:
        q = q.where(or_(col(Hospital.region).in_(sorted(regions)), col(Hospital.region).is_(None)))
    rows = session.exec(q).all()
    ranked = sorted(
        ((h, distance_km(lat, lon, h.lat, h.lon)) for h in rows), key=lambda t: (t[1], t[0].id)
    )
    return ranked[:limit]
