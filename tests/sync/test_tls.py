"""TLS with a pinned platform CA: the device trusts that CA only."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from sync import TransportError
from sync.client import PlatformClient
from sync.seal import seal_case
from tests.sync._net import World, serve
from tests.sync.fakehub import FakeHub


def make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub.test")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def test_pinned_ca(tmp_path: Path) -> None:
    ca_key, ca = make_ca("Kyukyu Platform Test CA")
    _, other_ca = make_ca("Some Other CA")
    key, cert = server_cert(ca_key, ca)
    (tmp_path / "ca.pem").write_bytes(pem(ca))
    (tmp_path / "other.pem").write_bytes(pem(other_ca))
    (tmp_path / "server.pem").write_bytes(pem(cert))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    world = World()
    hub = FakeHub()
    hub.add_key(f"device:{world.device_id}", world.device_key.public_key())
    hub.add_hospital("h0", world.device_key.public_key())
    env = seal_case(
        b"{}",
        case_id="tls-1",
        device_id=world.device_id,
        device_key=world.device_key,
        recipients={"h0": X25519PrivateKey.generate().public_key()},
    )
    with serve(
        hub.app,
        ssl_certfile=str(tmp_path / "server.pem"),
        ssl_keyfile=str(tmp_path / "server.key"),
    ) as url:
        assert url.startswith("https://")
        good = PlatformClient(
            url, key=world.device_key, device_id=world.device_id, ca_file=tmp_path / "ca.pem"
        )
        assert good.post_case("tls-1", ["h0"], env, idempotency_key="k")["case_id"] == "tls-1"
        good.close()
        for ca_file in (tmp_path / "other.pem", None):  # wrong CA; system store only
            bad = PlatformClient(
                url, key=world.device_key, device_id=world.device_id, ca_file=ca_file
            )
            with pytest.raises(TransportError):
                bad.post_case("tls-1", ["h0"], env, idempotency_key="k")
            bad.close()
    assert hub.posts == 1
