"""The platform's patient-certificate check is edge.jpki.trust's (one verifier, both ends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from hub_server.core.certs import CertificateVerifier
from hub_server.core.errors import InvalidInput, Unavailable


def _without_eku(test_ca: Any, card: Any) -> bytes:
    """The card's certificate re-issued by the same root without its EKU extension."""
    cert = card.auth_certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        if not isinstance(ext.value, x509.ExtendedKeyUsage):
            builder = builder.add_extension(ext.value, critical=ext.critical)
    key = test_ca._keys["auth_root"]  # the test CA keeps its root keys private
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_verifies_with_the_jpki_store_and_its_checks(
    roots_dir: Path, test_ca: Any, card: Any
) -> None:
    revoked: set[int] = set()
    v = CertificateVerifier(roots_dir, allow_test_roots=True, revoked_serials=lambda: revoked)
    der = card.auth_certificate_der
    got = v.verify(der, now=datetime.now(UTC))
    assert got.serial == card.auth_certificate.serial_number
    assert {c.subject for c in v.crl_roots()} == {
        test_ca.auth_root.subject,
        test_ca.phone_auth_root.subject,
    }
    with pytest.raises(InvalidInput) as exc:  # the EKU check the old verifier lacked
        v.verify(_without_eku(test_ca, card))
    assert exc.value.code == "wrong_extended_key_usage"
    revoked = {card.auth_certificate.serial_number}
    with pytest.raises(InvalidInput) as exc:
        v.verify(der)
    assert exc.value.code == "certificate_revoked"


def test_test_roots_outside_test_mode_leave_no_trust_roots(roots_dir: Path, card: Any) -> None:
    v = CertificateVerifier(roots_dir, allow_test_roots=False)
    assert v.crl_roots() == []  # nothing unpinned signs a CRL either
    with pytest.raises(Unavailable) as exc:
        v.verify(card.auth_certificate_der)
    assert exc.value.code == "no_trust_roots"
    assert "test_root_refused" in exc.value.message_en
    none = CertificateVerifier(None, allow_test_roots=True)
    with pytest.raises(Unavailable):
        none.verify(card.auth_certificate_der)
