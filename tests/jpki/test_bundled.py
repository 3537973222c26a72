"""The J-LIS roots shipped as package data: read only through their pins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge.card_sim import KeyPool
from edge.jpki import NoTrustAnchors, RootNotPinned
from edge.jpki.bundled import BUNDLED_ROOTS_FOLDER, bundled_file_name, bundled_roots
from edge.jpki.trust import PINNED_ROOTS, TrustStore, fingerprint

from .pki import make_root

PACKAGE_ROOTS = Path(__file__).resolve().parents[2] / "edge" / "jpki" / BUNDLED_ROOTS_FOLDER
SHIPPED = ["auth-ca-2015.pem", "auth-ca-2023.pem", "sign-ca-2015.pem", "sign-ca-2023.pem"]
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package's roots folder to tamper with."""
    out = tmp_path / "roots"
    shutil.copytree(PACKAGE_ROOTS, out)
    for f in out.iterdir():
        f.chmod(0o644)
    return out


def test_the_package_ships_the_2015_and_2023_roots_each_matching_its_pin() -> None:
    assert sorted(p.name for p in PACKAGE_ROOTS.iterdir()) == SHIPPED
    roots = bundled_roots()
    assert [r.file for r in roots] == SHIPPED
    assert [r.pin.name for r in roots] == ["auth-2015", "auth-2023", "sign-2015", "sign-2023"]
    for r in roots:
        assert fingerprint(r.certificate.public_bytes(DER)) == r.sha256
        assert r.sha256 in PINNED_ROOTS
        assert r.certificate.not_valid_after_utc.date() == r.pin.not_after
        assert x509.load_pem_x509_certificate(r.pem()) == r.certificate
    store = TrustStore.from_certificates([r.certificate for r in roots])
    assert not any(a.test for a in store.anchors)  # production anchors, no test mode


def test_file_names_follow_the_pins() -> None:
    names = sorted(bundled_file_name(p) for p in PINNED_ROOTS.values())
    assert names == [*SHIPPED[:3], "sign-ca-2019.pem", SHIPPED[3]]


def test_a_tampered_copy_is_refused(copy: Path) -> None:
    """One bit of the signature changed: still a well-formed certificate, another SHA-256."""
    target = copy / "auth-ca-2023.pem"
    der = bytearray(x509.load_pem_x509_certificate(target.read_bytes()).public_bytes(DER))
    der[-1] ^= 0x01
    tampered = x509.load_der_x509_certificate(bytes(der))
    target.write_bytes(tampered.public_bytes(PEM))
    with pytest.raises(RootNotPinned) as info:
        bundled_roots(copy)
    assert info.value.code == "root_not_pinned"
    assert "auth-ca-2023.pem" in str(info.value)
    assert fingerprint(bytes(der)) in str(info.value)


def test_an_impostor_with_the_same_subject_is_refused(copy: Path, tmp_path: Path) -> None:
    genuine = x509.load_pem_x509_certificate((copy / "auth-ca-2023.pem").read_bytes())
    impostor = make_root(KeyPool(1)(), genuine.subject)
    (copy / "auth-ca-2023.pem").write_bytes(impostor.public_bytes(PEM))
    with pytest.raises(RootNotPinned, match=r"auth-ca-2023\.pem"):
        bundled_roots(copy)


def test_an_extra_file_or_a_swapped_name_is_refused(copy: Path) -> None:
    unpinned = copy / "auth-ca-2019.pem"  # no pin of that name exists: nobody checked it
    shutil.copy(copy / "auth-ca-2023.pem", unpinned)
    with pytest.raises(RootNotPinned, match=r"auth-ca-2019\.pem"):
        bundled_roots(copy)
    unpinned.unlink()
    auth, sign = (copy / "auth-ca-2023.pem").read_bytes(), (copy / "sign-ca-2023.pem").read_bytes()
    (copy / "auth-ca-2023.pem").write_bytes(sign)  # pinned, but as another root than named
    (copy / "sign-ca-2023.pem").write_bytes(auth)
    with pytest.raises(RootNotPinned, match=r"auth-ca-2023\.pem"):
        bundled_roots(copy)


def test_garbage_two_certificates_or_nothing_is_refused(copy: Path) -> None:
    target = copy / "sign-ca-2015.pem"
    original = target.read_bytes()
    target.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(RootNotPinned, match="not a PEM certificate"):
        bundled_roots(copy)
    target.write_bytes(original + original)
    with pytest.raises(RootNotPinned, match="2 certificates"):
        bundled_roots(copy)
    for f in copy.iterdir():
        f.unlink()
    with pytest.raises(NoTrustAnchors, match="package data"):
        bundled_roots(copy)
