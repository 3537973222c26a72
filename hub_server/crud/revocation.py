"""Revocation: ingest the CA's CRLs, keep versions, answer snapshots with deltas."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy import func
from sqlmodel import Session, col, select

from hub_server.core.errors import InvalidInput
from hub_server.models import RevocationVersion, RevokedSerial

__all__ = ["current_revocation_version", "ingest_crl", "revoked_serials", "snapshot"]


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
        revoked_count=total,
    )
    session.add(row_v)
    return row_v


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
