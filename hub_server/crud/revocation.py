"""Revocation: ingest the CA's CRLs, keep versions, answer snapshots with deltas.

A CRL is taken only when it is newer than the last one taken from the same issuer
(CRLNumber and thisUpdate both strictly greater) and still current (nextUpdate not
passed): replaying an old CRL cannot take serials out of the revocation set. Each
accepted CRL makes a new revocation ``version``, the snapshot's number, which only grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub_server.core.errors import InvalidInput
from hub_server.models import RevocationVersion, RevokedSerial

__all__ = [
    "CrlExpired",
    "CrlNotNewer",
    "current_revocation_version",
    "ingest_crl",
    "revoked_serials",
    "snapshot",
]


class CrlNotNewer(InvalidInput):
    """The CRL is not newer than the last one taken from its issuer (a replay or a rollback)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "crl_not_newer",
            f"the CRL is not newer than the last one ingested ({detail})",
            "失効リストが前回取り込んだものより新しくありません。",
        )


class CrlExpired(InvalidInput):
    """The CRL's nextUpdate has passed: it no longer says what is revoked now."""

    def __init__(self, next_update: datetime) -> None:
        super().__init__(
            "crl_expired",
            f"the CRL is past its nextUpdate ({next_update.isoformat()})",
            "失効リストの有効期限(次回更新日時)を過ぎています。",
        )


def current_revocation_version(session: Session) -> int:
    return int(session.exec(select(func.coalesce(func.max(RevocationVersion.version), 0))).one())


def revoked_serials(session: Session) -> frozenset[int]:
    rows = session.exec(
        select(RevokedSerial.serial).where(col(RevokedSerial.removed_version).is_(None))
    ).all()
    return frozenset(int(s, 16) for s in rows)


def ingest_crl(
    session: Session, *, crl_der: bytes, roots: Sequence[x509.Certificate], now: datetime
) -> RevocationVersion:
    """Check the CRL's signature against a trust root, then record what changed."""
    try:
        crl = x509.load_der_x509_crl(crl_der)
    except ValueError:
        raise InvalidInput("malformed_crl", "the CRL is not a DER X.509 CRL") from None
    if not any(_crl_signed_by(crl, root) for root in roots):
        raise InvalidInput("untrusted_crl", "the CRL is not signed by a trusted root")
    number = _crl_number(crl)
    _check_fresh(session, crl, number, now)
    issuer = hashlib.sha256(crl.issuer.public_bytes()).hexdigest()[:16]
    listed = {format(entry.serial_number, "x") for entry in crl}
    active_rows = session.exec(
        select(RevokedSerial).where(
            RevokedSerial.issuer == issuer, col(RevokedSerial.removed_version).is_(None)
        )
    ).all()
    active = {r.serial: r for r in active_rows}
    version = current_revocation_version(session) + 1
    for serial in listed - active.keys():
        row = session.get(RevokedSerial, (issuer, serial))
        if row is None:
            session.add(RevokedSerial(issuer=issuer, serial=serial, added_version=version))
        else:  # revoked again after having been removed
            row.added_version, row.removed_version = version, None
            session.add(row)
    for serial in active.keys() - listed:
        active[serial].removed_version = version
        session.add(active[serial])
    total = len(listed) + len(
        session.exec(
            select(RevokedSerial.serial).where(
                RevokedSerial.issuer != issuer, col(RevokedSerial.removed_version).is_(None)
            )
        ).all()
    )
    row_v = RevocationVersion(
        version=version,
        ingested_at=now,
        this_update=crl.last_update_utc,
        issuer=crl.issuer.rfc4514_string()[:300],
        crl_number=None if number is None else str(number),
        revoked_count=total,
    )
    session.add(row_v)
    return row_v


def _crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return None


def _check_fresh(
    session: Session, crl: x509.CertificateRevocationList, number: int | None, now: datetime
) -> None:
    """``CrlExpired`` past nextUpdate; ``CrlNotNewer`` unless newer than the issuer's last."""
    next_update = crl.next_update_utc
    if next_update is not None and next_update <= now:
        raise CrlExpired(next_update)
    last = session.exec(
        select(RevocationVersion)
        .where(RevocationVersion.issuer == crl.issuer.rfc4514_string()[:300])
        .order_by(col(RevocationVersion.version).desc())
        .limit(1)
    ).first()
    if last is None:
        return
    if last.crl_number is not None and (number is None or number <= int(last.crl_number)):
        raise CrlNotNewer("CRLNumber")
    if last.this_update is not None:
        # Both numbered: the CRLNumber orders them (two CRLs may be issued within the
        # same second, the resolution of thisUpdate); thisUpdate may only not go back.
        # Otherwise thisUpdate alone must be newer.
        ordered = last.crl_number is not None and number is not None
        last_update = _aware(last.this_update)
        if crl.last_update_utc < last_update or (
            not ordered and crl.last_update_utc == last_update
        ):
            raise CrlNotNewer("thisUpdate")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _crl_signed_by(crl: x509.CertificateRevocationList, root: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def snapshot(session: Session, *, since: int, now: datetime) -> dict[str, Any]:
    """The unsigned snapshot body: full list, or the delta after version ``since``."""
    version = current_revocation_version(session)
    full = since <= 0 or since > version
    if full:
        added = session.exec(
            select(RevokedSerial.serial).where(col(RevokedSerial.removed_version).is_(None))
        ).all()
        removed: Sequence[str] = []
    else:
        added = session.exec(
            select(RevokedSerial.serial).where(
                col(RevokedSerial.added_version) > since,
                col(RevokedSerial.removed_version).is_(None),
            )
        ).all()
        removed = session.exec(
            select(RevokedSerial.serial).where(
                col(RevokedSerial.removed_version) > since,
                col(RevokedSerial.added_version) <= since,
            )
        ).all()
    return {
        "format": "kyukyu-revocation-v1",
        "version": version,
        "since": 0 if full else since,
        "full": full,
        "issued_at": now.isoformat(),
        "added": sorted(set(added)),
        "removed": sorted(set(removed)),
    }
