"""Operators, technicians, enrollment, devices, hospitals, nonces, challenges."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from hub_server.core.errors import InvalidInput, NotAuthenticated, NotFound
from hub_server.core.security import new_id, new_token, sha256_hex
from hub_server.models import (
    Challenge,
    Device,
    EnrollmentToken,
    Hospital,
    HospitalEnrollmentToken,
    Nonce,
    Operator,
)
from sync.signing import b64d, b64e, public_key_from_b64

__all__ = [
    "Principal",
    "consume_challenge",
    "create_challenge",
    "create_enrollment_token",
    "create_hospital",
    "create_hospital_token",
    "create_operator",
    "hospitals_nearest",
    "principal_for",
    "purge_expired",
    "purge_expired_challenges",
    "record_nonce",
    "redeem_enrollment_token",
    "redeem_hospital_token",
    "revoke_device",
]

ROLES = ("operator", "technician")
_NONCES: Table = Nonce.__table__  # type: ignore[attr-defined]


def _check_key(text: str) -> str:
    try:
        public_key_from_b64(text)
    except ValueError:
        raise InvalidInput(
            "bad_public_key", "public key must be 32 raw Ed25519 bytes, base64url"
        ) from None
    return text


def create_operator(
    session: Session,
    *,
    name: str,
    role: str,
    public_key: str,
    now: datetime,
    fire_department: str | None = None,
) -> Operator:
    if role not in ROLES:
        raise InvalidInput("bad_role", f"role must be one of {ROLES}")
    if role == "technician" and not fire_department:
        raise InvalidInput("fire_department_required", "a technician belongs to a fire department")
    op = Operator(
        id=new_id(),
        name=name,
        role=role,
        fire_department=fire_department,
        public_key=_check_key(public_key),
        created_at=now,
    )
    session.add(op)
    return op


def create_enrollment_token(
    session: Session, *, fire_department: str, created_by: str, ttl: timedelta, now: datetime
) -> tuple[str, EnrollmentToken]:
    """Return the one-time token (shown once) and its stored row (hash only)."""
    token = new_token()
    row = EnrollmentToken(
        token_hash=sha256_hex(token),
        fire_department=fire_department,
        created_by=created_by,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    return token, row


def redeem_enrollment_token(
    session: Session, *, token: str, public_key: str, name: str, now: datetime
) -> Device:
    """Use a token once; a used, expired or unknown token is refused alike (401)."""
    _check_key(public_key)
    row = session.exec(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == sha256_hex(token))
    ).first()
    refused = NotAuthenticated(
        "invalid_enrollment_token",
        "the enrollment token is unknown, already used or expired",
        "登録トークンが無効です(使用済みまたは期限切れ)。技術担当者に新しいトークンを依頼してください。",
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise refused
    device_id = new_id()
    # Conditional update: two concurrent redemptions cannot both succeed.
    result = session.execute(
        update(EnrollmentToken)
        .where(col(EnrollmentToken.id) == row.id, col(EnrollmentToken.used_at).is_(None))
        .values(used_at=now, device_id=device_id)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise refused
    device = Device(
        id=device_id,
        name=name,
        fire_department=row.fire_department,
        public_key=public_key,
        created_at=now,
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


def create_hospital(
    session: Session,
    *,
    name: str,
    lat: float,
    lon: float,
    hpke_public_key: str,
    signing_public_key: str,
    now: datetime,
) -> Hospital:
    try:
        if len(b64d(hpke_public_key)) != 32:
            raise ValueError
    except ValueError:
        raise InvalidInput(
            "bad_hpke_key", "hpke_public_key must be 32 raw X25519 bytes, base64url"
        ) from None
    hospital = Hospital(
        id=new_id(),
        name=name,
        lat=lat,
        lon=lon,
        hpke_public_key=hpke_public_key,
        signing_public_key=_check_key(signing_public_key),
        created_at=now,
    )
    session.add(hospital)
    return hospital


def create_hospital_token(
    session: Session, *, name: str, created_by: str, ttl: timedelta, now: datetime
) -> tuple[str, HospitalEnrollmentToken]:
    """A one-time token for one hospital; the operator fixes its name (shown once)."""
    token = new_token()
    row = HospitalEnrollmentToken(
        token_hash=sha256_hex(token),
        name=name,
        created_by=created_by,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    return token, row


def redeem_hospital_token(
    session: Session,
    *,
    token: str,
    lat: float,
    lon: float,
    hpke_public_key: str,
    signing_public_key: str,
    now: datetime,
) -> Hospital:
    """Register the hospital with its own keys; a used, expired or unknown token is 401."""
    row = session.exec(
        select(HospitalEnrollmentToken).where(
            HospitalEnrollmentToken.token_hash == sha256_hex(token)
        )
    ).first()
    refused = NotAuthenticated(
        "invalid_enrollment_token",
        "the enrollment token is unknown, already used or expired",
        "登録トークンが無効です(使用済みまたは期限切れ)。運用者に新しいトークンを依頼してください。",
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise refused
    hospital = create_hospital(
        session,
        name=row.name,
        lat=lat,
        lon=lon,
        hpke_public_key=hpke_public_key,
        signing_public_key=signing_public_key,
        now=now,
    )
    # Conditional update: two concurrent redemptions cannot both succeed.
    result = session.execute(
        update(HospitalEnrollmentToken)
        .where(
            col(HospitalEnrollmentToken.id) == row.id,
            col(HospitalEnrollmentToken.used_at).is_(None),
        )
        .values(used_at=now, hospital_id=hospital.id)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise refused
    return hospital


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def hospitals_nearest(
    session: Session, *, lat: float, lon: float, limit: int
) -> list[tuple[Hospital, float]]:
    rows = session.exec(select(Hospital).where(col(Hospital.revoked).is_(False))).all()
    ranked = sorted(
        ((h, _distance_km(lat, lon, h.lat, h.lon)) for h in rows), key=lambda t: (t[1], t[0].id)
    )
    return ranked[:limit]


class Principal:
    """Who signed a request: ``kind`` is device, hospital, operator or technician."""

    def __init__(self, key_id: str, kind: str, row: Device | Hospital | Operator) -> None:
        self.key_id = key_id
        self.kind = kind
        self.row = row
        # Set when the route records the nonce in its own transaction (see deps).
        self.nonce: str | None = None
        self.nonce_expires: datetime | None = None
        # The verified signing key (set by ``principal_for``).
        self.public_key: Ed25519PublicKey | None = None

    @property
    def id(self) -> str:
        return self.row.id


def _table(model: type[Device] | type[Hospital] | type[Operator]) -> Table:
    table: Table = model.__table__  # type: ignore[union-attr]
    return table


_MODELS: dict[str, type[Device] | type[Hospital] | type[Operator]] = {
    "device": Device,
    "hospital": Hospital,
    "operator": Operator,
}
_BY_ID = {
    prefix: sa_select(table).where(table.c.id == bindparam("id"))
    for prefix, table in (
        ("device", _table(Device)),
        ("hospital", _table(Hospital)),
        ("operator", _table(Operator)),
    )
}
_KEYS: dict[str, Ed25519PublicKey] = {}  # parsed public keys by their text (immutable)


def principal_for(
    session: Session | Connection, key_id: str
) -> tuple[Principal, Ed25519PublicKey] | None:
    """The principal and public key for ``key_id``; revoked ones are returned (caller: 403).

    One Core query (no ORM identity map): this runs for every signed request. The row is
    a detached model object.
    """
    prefix, _, ident = key_id.partition(":")
    model = _MODELS.get(prefix)
    if model is None:
        return None
    conn = session.connection() if isinstance(session, Session) else session
    found = conn.execute(_BY_ID[prefix], {"id": ident}).mappings().first()
    if found is None:
        return None
    row = model(**found)
    kind = row.role if isinstance(row, Operator) else prefix
    text = row.signing_public_key if isinstance(row, Hospital) else row.public_key
    key = _KEYS.get(text)
    if key is None:
        key = public_key_from_b64(text)
        if len(_KEYS) > 100_000:
            _KEYS.clear()
        _KEYS[text] = key
    principal = Principal(key_id, kind, row)
    principal.public_key = key
    return principal, key


class DeviceKeyCache:
    """Devices' rows and public keys by key id, for the hot path of case posts (a device's
    key and fire department never change). Whether a device is revoked is never taken
    from here: the case writer reads it where it stores the case (``crud.case_batch``,
    ``revoked_devices``)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._hits: dict[str, tuple[Device, Ed25519PublicKey]] = {}

    def get(self, key_id: str) -> tuple[Principal, Ed25519PublicKey] | None:
        hit = self._hits.get(key_id)
        if hit is None:
            return None
        principal = Principal(key_id, "device", hit[0])  # its own: nonces are per request
        principal.public_key = hit[1]
        return principal, hit[1]

    def only(self, key_id: str) -> DeviceKeyCache | None:
        """A cache of this one key if it is known (else None): a caller that must do no
        I/O passes it, so that the key cannot go missing in between."""
        hit = self._hits.get(key_id)
        if hit is None:
            return None
        one = DeviceKeyCache(limit=1)
        one._hits[key_id] = hit
        return one

    def put(self, key_id: str, principal: Principal, key: Ed25519PublicKey) -> None:
        if principal.kind == "device" and isinstance(principal.row, Device):
            if len(self._hits) >= self._limit:
                self._hits.clear()
            self._hits[key_id] = (principal.row, key)


def revoked_devices(conn: Connection, device_ids: set[str]) -> set[str]:
    """Those of ``device_ids`` that are revoked (one query)."""
    rows = conn.exec_driver_sql(
        "SELECT id FROM devices WHERE id = ANY(%(ids)s) AND revoked", {"ids": list(device_ids)}
    ).all()
    return {str(r[0]) for r in rows}


def record_nonce(conn: Connection, *, key_id: str, nonce: str, expires_at: datetime) -> bool:
    """Store a nonce on an autocommit connection; False if seen before (replay)."""
    try:
        conn.execute(_NONCES.insert(), {"key_id": key_id, "nonce": nonce, "expires_at": expires_at})
    except IntegrityError:
        return False
    return True


def create_challenge(
    session: Session, *, purpose: str, device_id: str | None, ttl: timedelta, now: datetime
) -> Challenge:
    import secrets

    ch = Challenge(
        id=new_id(),
        nonce=b64e(secrets.token_bytes(32)),
        purpose=purpose,
        device_id=device_id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(ch)
    return ch


def consume_challenge(
    session: Session, *, challenge_id: str, purpose: str, device_id: str | None, now: datetime
) -> Challenge:
    """Use a challenge once (its purpose and device must match); 401 otherwise."""
    ch = session.get(Challenge, challenge_id)
    bad = NotAuthenticated(
        "invalid_challenge",
        "the challenge is unknown, used, expired or not yours",
        "チャレンジが無効です。もう一度やり直してください。",
    )
    if ch is None or ch.purpose != purpose or ch.device_id != device_id:
        raise bad
    if ch.used_at is not None or ch.expires_at <= now:
        raise bad
    result = session.execute(
        update(Challenge)
        .where(col(Challenge.id) == ch.id, col(Challenge.used_at).is_(None))
        .values(used_at=now)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise bad
    return ch


def purge_expired(session: Session, *, now: datetime) -> None:
    """Drop expired nonces and challenges (the replay window is over for them)."""
    session.execute(delete(Nonce).where(col(Nonce.expires_at) < now))
    purge_expired_challenges(session, now=now)


def purge_expired_challenges(session: Session, *, now: datetime) -> int:
    """Drop challenges past their expiry (used or not: nothing refers to them after)."""
    result = session.execute(delete(Challenge).where(col(Challenge.expires_at) <= now))
    return int(getattr(result, "rowcount", 0) or 0)
