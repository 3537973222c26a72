"""A tiny certificate factory for trust tests: roots and auth certificates with one thing wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.jpki.trust import AUTH_POLICY_OID

ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
        x509.NameAttribute(
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            "Japan Agency for Local Authority Information Systems",
        ),
    ]
)
SIGN_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _ku(digital: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_root(key: rsa.RSAPrivateKey, name: x509.Name = ROOT_NAME) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=3650))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ku(False, True), critical=True)
        .sign(key, hashes.SHA256())
    )


def make_auth(
    root_key: rsa.RSAPrivateKey,
    subject_key: rsa.RSAPrivateKey,
    *,
    serial: int = 0x1234,
    issuer: x509.Name = ROOT_NAME,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    policy: x509.ObjectIdentifier | None = AUTH_POLICY_OID,
    digital_signature: bool = True,
    eku: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "SECRETSUBJECT0001"),
                ]
            )
        )
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or NOW - timedelta(days=30))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(_ku(digital_signature, False), critical=True)
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if eku is None else eku
    if usages:
        b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if policy is not None:
        b = b.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=True
        )
    return b.sign(root_key, hashes.SHA256())
