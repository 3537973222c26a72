"""OpenSC (Debian ``opensc``, its own ``jpki`` driver) against the virtual card through pcscd.

Code nobody here wrote lists, reads and signs with the simulator. These tests
fail, never skip, when OpenSC is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from edge.jpki import JpkiSession
from edge.reader import ApduChannel
from edge.reader.pcsc import PcscReaders

from .test_vpcd import Plugged

pytestmark = [pytest.mark.pcscd, pytest.mark.opensc]

PKCS11_MODULE = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package opensc): run scripts/bootstrap")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    res = subprocess.run(args, capture_output=True, timeout=60, check=False)
    assert res.returncode == 0, (args, res.stdout.decode(errors="replace"), res.stderr.decode())
    return res


def _reader_index(name: str) -> str:
    with PcscReaders() as readers:
        return str(readers.list().index(name))


def test_pkcs15_lists_and_reads_auth_certificate(vpcd_card: Plugged) -> None:
    card, _fe, name = vpcd_card
    idx = _reader_index(name)
    listing = _run(_tool("pkcs15-tool"), "--reader", idx, "--list-certificates").stdout.decode()
    assert "User Authentication Certificate" in listing
    assert "Digital Signature Certificate CA" in listing
    out = _run(_tool("pkcs15-tool"), "--reader", idx, "--read-certificate", "01").stdout
    pem = out[out.index(b"-----BEGIN CERTIFICATE-----") :]
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.public_bytes(Encoding.DER) == card.image.auth_certificate_der
    # Same bytes as our own read (edge.jpki over pyscard, the same reader).
    with PcscReaders() as readers:
        conn = readers.wait_for_card(name, timeout=10)
        session = JpkiSession(ApduChannel(conn))
        session.select()
        ours = session.read_auth_certificate()
        conn.close()
    assert ours == cert.public_bytes(Encoding.DER)
    # The CA certificate (ID 03) is the card's EF 000B.
    out = _run(_tool("pkcs15-tool"), "--reader", idx, "--read-certificate", "03").stdout
    ca = x509.load_pem_x509_certificate(out[out.index(b"-----BEGIN CERTIFICATE-----") :])
    assert ca.public_bytes(Encoding.DER) == card.image.auth_ca_der


def test_pkcs11_signs_after_pin(vpcd_card: Plugged, tmp_path: Path) -> None:
    card, _fe, _name = vpcd_card
    if not PKCS11_MODULE.exists():
        pytest.fail(f"{PKCS11_MODULE} missing (Debian package opensc-pkcs11)")
    msg = tmp_path / "msg"
    msg.write_bytes(b"challenge from the ambulance")
    sig = tmp_path / "sig"
    _run(
        _tool("pkcs11-tool"),
        "--module", str(PKCS11_MODULE),
        "--login", "--pin", card.image.pin,
        "--sign", "-m", "SHA256-RSA-PKCS", "--id", "01",
        "-i", str(msg), "-o", str(sig),
    )  # fmt: skip
    signature = sig.read_bytes()
    assert len(signature) == 256
    assert signature != bytes(256)
    pub = card.image.auth_certificate.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    pub.verify(signature, msg.read_bytes(), padding.PKCS1v15(), hashes.SHA256())
    assert card.image.tries["auth_pin"] == 3


def test_opensc_tool_sees_jpki(vpcd_card: Plugged) -> None:
    _card, _fe, name = vpcd_card
    out = _run(_tool("opensc-tool"), "--reader", _reader_index(name), "--name").stdout.decode()
    assert "jpki" in out.lower()


def test_pkcs11_wrong_pin_costs_a_try(vpcd_card: Plugged, tmp_path: Path) -> None:
    card, _fe, _name = vpcd_card
    msg = tmp_path / "msg"
    msg.write_bytes(b"x")
    res = subprocess.run(
        [
            _tool("pkcs11-tool"),
            "--module", str(PKCS11_MODULE),
            "--login", "--pin", "0000",
            "--sign", "-m", "SHA256-RSA-PKCS", "--id", "01",
            "-i", str(msg), "-o", str(tmp_path / "sig"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert res.returncode != 0
    assert card.image.tries["auth_pin"] == 2
    assert not (tmp_path / "sig").exists() or (tmp_path / "sig").read_bytes() == b""
