"""Trust: pinned roots, issuer by signature, validity in JST, usage, policy, revocation."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.card_sim import CardImage, KeyPool, TestCA
from edge.jpki import (
    CvcCaNotPinned,
    Expired,
    MalformedCertificate,
    NoTrustAnchors,
    NotYetValid,
    Revoked,
    TestRootRefused,
    TrustError,
    UntrustedIssuer,
    WrongExtendedKeyUsage,
    WrongKeyUsage,
    WrongPolicy,
    _errors,
    parse_cvc,
)
from edge.jpki.revocation import RevocationSnapshot
from edge.jpki.trust import (
    AUTH_POLICY_OID,
    JST,
    PINNED_CVC_CA_KEYS,
    PINNED_ROOTS,
    TrustStore,
    fingerprint,
    verify_auth_certificate,
    verify_text_ap_issuer,
)

from .conftest import store_of
from .pki import NOW, SIGN_POLICY_OID, make_auth, make_root

PROJECT = Path(__file__).resolve().parents[2]
DER = serialization.Encoding.DER


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(DER)


# -- pinned roots -----------------------------------------------------------------


def test_pins_are_the_five_of_the_spec_with_the_2019_signing_root() -> None:
    assert sorted(r.name for r in PINNED_ROOTS.values()) == [
        "auth-2015",
        "auth-2023",
        "sign-2015",
        "sign-2019",
        "sign-2023",
    ]
    # Written out from docs/jpki-card.md's root table, not from the code under test.
    sign_2019 = PINNED_ROOTS["79679C33E4CC9319440F1AD120A597FF1844E2EF217063ADB176966FD5E6FBEB"]
    assert (sign_2019.name, sign_2019.purpose) == ("sign-2019", "sign")
    assert sign_2019.not_after.isoformat() == "2029-09-14"
    assert (
        PINNED_ROOTS["64114F29620C24ED2631D46476A040E7EE740D956089C00B036A6A8118C322B5"].purpose
        == "auth"
    )


def test_the_pins_are_the_ones_docs_jpki_card_writes_out() -> None:
    text = (PROJECT / "docs" / "jpki-card.md").read_text(encoding="utf-8")
    for pin in PINNED_ROOTS.values():
        assert f"`{pin.sha256}`" in text, pin.name
        assert pin.not_after.isoformat() in text, pin.name
    for key in PINNED_CVC_CA_KEYS.values():
        assert f"`{key.key_id_hex}`" in text, key.name
    assert f"`{AUTH_POLICY_OID.dotted_string}`" in text


def test_real_roots_load_and_match_the_pins(jpki_roots_dir: Path) -> None:
    store = TrustStore.from_directory(jpki_roots_dir)
    # The package ships the 2015 and 2023 roots; the 2019 one is pinned only.
    assert sorted(a.name for a in store.anchors) == sorted(
        r.name for r in PINNED_ROOTS.values() if r.name != "sign-2019"
    )
    assert not any(a.test for a in store.anchors)
    for a in store.anchors:
        assert fingerprint(_der(a.certificate)) == a.sha256
        assert a.certificate.not_valid_after_utc.date() == PINNED_ROOTS[a.sha256].not_after


def test_only_the_package_data_folder_holds_the_real_roots(jpki_roots_dir: Path) -> None:
    """The roots ship once, in edge/jpki/roots, where they are checked against the pins on
    load; a second copy elsewhere in the tree would be read by nobody's check."""
    shipped = PROJECT / "edge" / "jpki" / "roots"
    needles: list[bytes] = []
    for f in jpki_roots_dir.glob("*.pem"):
        der = _der(x509.load_pem_x509_certificate(f.read_bytes()))
        needles += [der[:200], base64.b64encode(der)[:64]]
    shipped_text = b"".join(f.read_bytes() for f in shipped.glob("*.pem"))
    assert all(n in shipped_text for n in needles[1::2])  # the PEM's first line, each root
    skip = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    skip |= {"build", "dist"}  # a wheel build copies the package data
    for dirpath, dirnames, filenames in os.walk(PROJECT):
        dirnames[:] = [d for d in dirnames if d not in skip and not d.endswith(".egg-info")]
        if Path(dirpath) == shipped:
            continue
        for name in filenames:
            p = Path(dirpath) / name
            try:  # other suites create and delete files meanwhile
                if not p.is_file() or p.stat().st_size > 5_000_000:
                    continue
                data = p.read_bytes()
            except OSError:
                continue
            for n in needles:
                assert n not in data, f"{p} holds a copy of a J-LIS root"


def test_generated_root_refused_without_test_mode(test_roots_dir: Path, test_ca: TestCA) -> None:
    with pytest.raises(TestRootRefused) as info:
        TrustStore.from_directory(test_roots_dir)
    assert info.value.code == "test_root_refused"
    with pytest.raises(TestRootRefused):
        TrustStore.from_certificates([test_ca.auth_root])
    store = TrustStore.from_directory(test_roots_dir, allow_test_roots=True)
    assert len(store.anchors) == len(test_ca.roots)
    assert all(a.test for a in store.anchors)


def test_missing_or_empty_roots_directory(tmp_path: Path) -> None:
    with pytest.raises(NoTrustAnchors):
        TrustStore.from_directory(tmp_path / "nope")
    with pytest.raises(NoTrustAnchors):
        TrustStore.from_directory(tmp_path)
    (tmp_path / "bad.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(MalformedCertificate):
        TrustStore.from_directory(tmp_path, allow_test_roots=True)


def test_test_ca_cards_pass_in_test_mode(test_ca: TestCA, card_image: CardImage) -> None:
    store = TrustStore.from_certificates(test_ca.roots, allow_test_roots=True)
    v = verify_auth_certificate(card_image.auth_certificate_der, store)
    assert v.trusted
    assert v.test_root
    assert v.root_sha256 == fingerprint(_der(test_ca.auth_root))
    phone = test_ca.issue_card(profile="android")
    v = verify_auth_certificate(phone.auth_certificate_der, store)
    assert v.root_sha256 == fingerprint(_der(test_ca.phone_auth_root))
    with pytest.raises(CvcCaNotPinned):  # roots only: the test CVC CA key is not in
        verify_text_ap_issuer(parse_cvc(card_image.text_cvc), store)
    assert verify_text_ap_issuer(parse_cvc(card_image.text_cvc), store_of(test_ca)).test


def test_test_ca_card_refused_by_real_roots(jpki_roots_dir: Path, card_image: CardImage) -> None:
    store = TrustStore.from_directory(jpki_roots_dir)
    with pytest.raises(UntrustedIssuer):
        verify_auth_certificate(card_image.auth_certificate_der, store)
    # The production CVC CA key is pinned, the test CA's key id is not.
    with pytest.raises(CvcCaNotPinned):
        verify_text_ap_issuer(parse_cvc(card_image.text_cvc), store)


# -- crafted certificates ------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(key_pool: KeyPool) -> list:  # type: ignore[type-arg]
    return [key_pool() for _ in range(3)]


@pytest.fixture(scope="module")
def crafted(keys: list) -> tuple[x509.Certificate, TrustStore]:  # type: ignore[type-arg]
    root = make_root(keys[0])
    return root, TrustStore.from_certificates([root], allow_test_roots=True)


def test_issuer_chosen_by_signature_not_name(keys: list) -> None:  # type: ignore[type-arg]
    # Two generations with the same DN: the right one is found by its signature.
    old, new = make_root(keys[0]), make_root(keys[1])
    assert old.subject == new.subject
    cert = make_auth(keys[1], keys[2])
    store = TrustStore.from_certificates([old, new], allow_test_roots=True)
    v = verify_auth_certificate(_der(cert), store, now=NOW)
    assert v.root_sha256 == fingerprint(_der(new))
    # Same DN, wrong key: refused.
    only_old = TrustStore.from_certificates([old], allow_test_roots=True)
    with pytest.raises(UntrustedIssuer) as info:
        verify_auth_certificate(_der(cert), only_old, now=NOW)
    assert info.value.code == "untrusted_issuer"


def test_validity_in_jst(keys: list, crafted: tuple) -> None:  # type: ignore[type-arg]
    _root, store = crafted
    end = datetime(2027, 3, 13, 23, 59, 59, tzinfo=JST)
    cert = make_auth(keys[0], keys[2], not_after=end)
    v = verify_auth_certificate(cert, store, now=end - timedelta(seconds=1))
    assert v.not_after_jst == "2027-03-13T23:59:59+09:00"
    with pytest.raises(Expired) as info:
        verify_auth_certificate(cert, store, now=datetime(2027, 3, 14, 0, 0, 0, tzinfo=JST))
    assert info.value.code == "certificate_expired"
    # 2027-03-13 15:00 UTC is already the 14th in Japan.
    with pytest.raises(Expired):
        verify_auth_certificate(cert, store, now=datetime(2027, 3, 13, 15, 0, 0, tzinfo=UTC))


def test_not_yet_valid(keys: list, crafted: tuple) -> None:  # type: ignore[type-arg]
    _root, store = crafted
    cert = make_auth(keys[0], keys[2], not_before=NOW + timedelta(days=2))
    with pytest.raises(NotYetValid):
        verify_auth_certificate(cert, store, now=NOW)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"policy": SIGN_POLICY_OID}, WrongPolicy),
        ({"policy": None}, WrongPolicy),
        ({"digital_signature": False}, WrongKeyUsage),
        ({"eku": []}, WrongExtendedKeyUsage),
        ({"eku": [ExtendedKeyUsageOID.SERVER_AUTH]}, WrongExtendedKeyUsage),
    ],
)
def test_usage_and_policy(keys: list, crafted: tuple, kwargs: dict, error: type) -> None:  # type: ignore[type-arg]
    _root, store = crafted
    with pytest.raises(error):
        verify_auth_certificate(make_auth(keys[0], keys[2], **kwargs), store, now=NOW)


def test_revoked(keys: list, crafted: tuple) -> None:  # type: ignore[type-arg]
    _root, store = crafted
    cert = make_auth(keys[0], keys[2], serial=0xABCDEF)
    snap = RevocationSnapshot.from_serials([1, 0xABCDEF, 10**30], sequence=7)
    with pytest.raises(Revoked) as info:
        verify_auth_certificate(cert, store, now=NOW, revocation=snap)
    assert info.value.code == "certificate_revoked"
    ok = make_auth(keys[0], keys[2], serial=0xABCDEE)
    v = verify_auth_certificate(ok, store, now=NOW, revocation=snap)
    assert v.revocation_checked
    assert v.revocation_sequence == 7


def test_test_ca_revocation(test_ca: TestCA, test_store: TrustStore) -> None:
    image = test_ca.issue_card()
    serial = image.auth_certificate.serial_number
    test_ca.revoke(serial)
    snap = RevocationSnapshot.from_serials(test_ca.revoked_serials)
    with pytest.raises(Revoked):
        verify_auth_certificate(image.auth_certificate_der, test_store, revocation=snap)


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x01", b"garbage", bytes(100)])
def test_malformed_der(crafted: tuple, der: bytes) -> None:  # type: ignore[type-arg]
    with pytest.raises(MalformedCertificate):
        verify_auth_certificate(der, crafted[1], now=NOW)


def test_every_error_has_code_and_messages() -> None:
    seen = set()
    for name in _errors.__all__:
        cls = getattr(_errors, name)
        with_tries = issubclass(cls, (_errors.WrongPin, _errors.LastTryNeedsConfirmation))
        err = cls(1) if with_tries else cls()
        d = err.to_dict()
        assert all(d[k] for k in ("code", "message_ja", "message_en")), name
        assert cls.code not in seen, name
        seen.add(cls.code)
    assert issubclass(Revoked, TrustError)


# -- CVC CA keys (the text AP's EF 0004) -------------------------------------------------------

PRODUCTION_CVC_ID = "35303030303333080530303100000000"  # "5000033" 08 05 "001" 00000000


def test_production_cvc_ca_key_is_pinned() -> None:
    from edge.jpki.trust import PINNED_CVC_CA_KEYS

    key = PINNED_CVC_CA_KEYS[bytes.fromhex(PRODUCTION_CVC_ID)]
    n = key.public_key.public_numbers()
    # First and last bytes of the published modulus (soltia48/myna-card src/ca.rs).
    assert n.n.to_bytes(256, "big")[:4] == bytes.fromhex("D24615F6")
    assert n.n.to_bytes(256, "big")[-4:] == bytes.fromhex("4F41597F")
    assert n.e == 65537
    assert not key.test
    assert TrustStore([]).cvc_keys[bytes.fromhex(PRODUCTION_CVC_ID)] is key


def test_cvc_ca_files_in_a_roots_directory(
    tmp_path: Path, jpki_roots_dir: Path, test_ca: TestCA
) -> None:
    import shutil

    from edge.jpki import RootNotPinned
    from edge.jpki.trust import PINNED_CVC_CA_KEYS

    for f in jpki_roots_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    pinned = PINNED_CVC_CA_KEYS[bytes.fromhex(PRODUCTION_CVC_ID)]
    # The production key installed under its id: fine without test mode.
    (tmp_path / f"cvc-ca-{PRODUCTION_CVC_ID}.pem").write_bytes(pinned.public_pem())
    assert not TrustStore.from_directory(tmp_path).cvc_keys[pinned.key_id].test
    # Another key under the production id: refused.
    (tmp_path / f"cvc-ca-{PRODUCTION_CVC_ID}.pem").write_bytes(test_ca.cvc_ca_pem())
    with pytest.raises(RootNotPinned):
        TrustStore.from_directory(tmp_path)
    (tmp_path / f"cvc-ca-{PRODUCTION_CVC_ID}.pem").unlink()
    # A test CA's key: test mode only.
    (tmp_path / test_ca.cvc_ca_filename).write_bytes(test_ca.cvc_ca_pem())
    with pytest.raises(TestRootRefused):
        TrustStore.from_directory(tmp_path)
    store = TrustStore.from_directory(tmp_path, allow_test_roots=True)
    assert store.cvc_keys[test_ca.cvc_ca_key_id].test
    # Not a public key: malformed.
    (tmp_path / test_ca.cvc_ca_filename).write_text("-----BEGIN PUBLIC KEY-----\nAA\n")
    with pytest.raises(MalformedCertificate):
        TrustStore.from_directory(tmp_path, allow_test_roots=True)
