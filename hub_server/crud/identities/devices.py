"""Devices: enrolled with a technician's one-time token, revoked by an operator."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlmodel import Session

from hub_server.core.errors import NotFound
from hub_server.core.security import new_id
from hub_server.crud.identities.keys import check_signing_key
from hub_server.crud.identities.tokens import DEVICE, issue_token, open_token, spend_token
from hub_server.models import Device, EnrollmentToken

__all__ = [
    "create_enrollment_token",
    "redeem_enrollment_token",
    "revoke_device",
    "revoked_devices",
]


def create_enrollment_token(
    session: Session,
    *,
    fire_department: str,
    created_by: str,
    ttl: timedelta,
    now: datetime,
    region: str | None = None,
) -> tuple[str, EnrollmentToken]:
    """Return the one-time token (shown once) and its stored row (hash only); the device
    it enrolls gets the operator's ``region``."""
    return issue_token(
        session,
        DEVICE,
        created_by=created_by,
        ttl=ttl,
        now=now,
        fire_department=fire_department,
        region=region,
    )


def redeem_enrollment_token(
    session: Session, *, token: str, public_key: str, name: str, now: datetime
) -> Device:
    """Use a token once; a used, expired or unknown token is refused alike (401)."""
    check_signing_key(public_key)
    row = open_token(session, DEVICE, token=token, now=now)
    device_id = new_id()
    spend_token(session, DEVICE, row, used_by=device_id, now=now)
    device = Device(
        id=device_id,
        name=name,
        fire_department=row.fire_department,
        public_key=public_key,
        created_at=now,
        region=row.region,
    )
    session.add(device)
    return device


def revoke_device(session: Session, *, device_id: str, now: datetime) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound("unknown_device", "no such device")
    if not device.revoked:
        device.revoked = True
        device.revoked_at = now
        session.add(device)
    return device


def revoked_devices(conn: Connection, device_ids: set[str]) -> set[str]:
    """Those of ``device_ids`` that are revoked (one query)."""
    rows = conn.exec_driver_sql(
        "SELECT id FROM devices WHERE id = ANY(%(ids)s) AND revoked", {"ids": list(device_ids)}
    ).all()
    return {str(r[0]) for r in rows}
