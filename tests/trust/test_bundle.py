"""Trust pins updatable without a release: a third root generation, the platform's check,
the signed trust bundle (never rolled back), against the real hub under uvicorn."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from edge.card_sim import CardImage, KeyPool, TestCA, VirtualCard
from edge.jpki import CertificateStatus, MalformedData
from edge.jpki.read import ReadOptions, read_card
from edge.jpki.trust import PINS_FILE, TrustStore, fingerprint, read_operator_pins
from edge.reader import ApduChannel, LoopbackConnection
from edge.trust_bundle import (
    PlatformRefused,
    TrustBundleError,
    TrustBundleFile,
    TrustBundleRollback,
    apply_bundle,
    check_with_platform,
    fetch_trust_bundle,
    parse_trust_bundle,
)
from sync.client import PlatformClient
from sync.signed import b64e_std, signed_document, verify_document
from tests.jpki.pki import make_auth
from tests.sync._net import World, serve
from tests.sync._realhub import hub_public_key, make_real_hub, populate

NOW = datetime.now(UTC).replace(microsecond=0)
# All generations share the production subject DN (jpki-card.md): pick by signature only.
JPKI_AUTH_ROOT = x509.Name(
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


def _generation(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A generated third root generation: pinned nowhere in the code."""
    ku = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    return (
        x509.CertificateBuilder()
        .subject_name(JPKI_AUTH_ROOT)
        .issuer_name(JPKI_AUTH_ROOT)
        .public_key(key.public_key())
        .serial_number(0x0133C349)
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .sign(key, hashes.SHA256())
    )


@dataclass
class Scene:
    image: CardImage
    root: x509.Certificate
    roots_dir: Path
    base_url: str
    hub_key: Any
    world: World

    def client(self, base_url: str | None = None) -> PlatformClient:
        return PlatformClient(
            base_url or self.base_url,
            key=self.world.device_key,
            device_id=self.world.device_id,
            hub_public_key=self.hub_key,
        )

    def pins(self, version: int) -> None:
        fp = fingerprint(self.root.public_bytes(serialization.Encoding.DER))
        entry = {"name": "auth-gen3", "purpose": "auth", "sha256": fp, "not_after": "2035-01-01"}
        doc = {"version": version, "roots": [entry]}
        (self.roots_dir / PINS_FILE).write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    tmp = tmp_path_factory.mktemp("trust")
    pool = KeyPool(2)
    root_key = pool()
    root = _generation(root_key)
    ca = TestCA.create(key_factory=KeyPool(3))
    image = ca.issue_card(key_factory=pool)
    cert = make_auth(
        root_key,
        image.auth_key,
        issuer=JPKI_AUTH_ROOT,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=365),
    )
    image.auth_certificate_der = cert.public_bytes(serialization.Encoding.DER)
    roots = tmp / "platform-roots"
    roots.mkdir()
    (roots / "auth-gen3.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    s = Scene(image, root, roots, "", None, World())
    s.pins(3)
    hub = make_real_hub(tmp / "hub", trust_roots_dir=roots, allow_test_roots=False)
    with serve(hub.app) as url:
        populate(hub, url, s.world, 0)
        s.base_url, s.hub_key = url, hub_public_key(hub)
        yield s


def _device_store(jpki_roots_dir: Path) -> TrustStore:
    """A production device: the J-LIS roots it pins, no test mode."""
    return TrustStore.from_directory(jpki_roots_dir)


def _read(image: CardImage, store: TrustStore) -> Any:
    card = VirtualCard(copy.deepcopy(image))
    return read_card(ApduChannel(LoopbackConnection(card)), ReadOptions(trust=store))


def test_unpinned_generation_verified_by_the_platform(scene: Scene, jpki_roots_dir: Path) -> None:
    r = _read(scene.image, _device_store(jpki_roots_dir))
    assert r.certificate_check.status is CertificateStatus.NOT_VERIFIED_ON_DEVICE
    with scene.client() as platform:
        checked = check_with_platform(platform, r)
    assert checked.certificate_check.status is CertificateStatus.VERIFIED_BY_PLATFORM
    assert checked.certificate_check.trusted
    d = checked.to_dict()["certificate"]
    assert d["status"] == "verified_by_platform"  # type: ignore[index]
    assert checked.verdict is None  # the device itself did not verify it
    assert checked.certificate.der == scene.image.auth_certificate_der


def test_offline_the_case_goes_on_marked(scene: Scene, jpki_roots_dir: Path) -> None:
    r = _read(scene.image, _device_store(jpki_roots_dir))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with scene.client(dead) as platform:
        kept = check_with_platform(platform, r)
    assert kept.certificate_check.status is CertificateStatus.NOT_VERIFIED_ON_DEVICE
    assert kept.to_dict()["certificate"]["status"] == "not_verified_on_device"  # type: ignore[index]
    assert kept.certificate.der == scene.image.auth_certificate_der  # the read stands


def test_platform_refuses_a_certificate_it_cannot_verify(
    scene: Scene, jpki_roots_dir: Path
) -> None:
    other = TestCA.create(key_factory=KeyPool(1)).issue_card()
    r = _read(other, _device_store(jpki_roots_dir))
    assert r.certificate_check.platform_checkable
    with scene.client() as platform:
        checked = check_with_platform(platform, r)
    assert checked.certificate_check.status is CertificateStatus.UNTRUSTED
    assert isinstance(checked.certificate_check.error, PlatformRefused)
    assert checked.certificate_check.error.detail == "untrusted_issuer"


def _unknown_signature_algorithm(der: bytes) -> bytes:
    """The certificate with its signature algorithm (sha256WithRSAEncryption, in the TBS
    and outside it) renamed to 1.2.840.113549.1.1.127: cryptography parses it, and
    reading its hash algorithm raises ``UnsupportedAlgorithm``."""
    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    assert der.count(sha256_rsa) == 2
    return der.replace(sha256_rsa, bytes.fromhex("06092a864886f70d01017f"))


def test_a_certificate_with_an_unknown_signature_algorithm_is_untrusted_on_both_ends(
    scene: Scene, jpki_roots_dir: Path
) -> None:
    card = TestCA.create(key_factory=KeyPool(1)).issue_card()
    card.auth_certificate_der = _unknown_signature_algorithm(card.auth_certificate_der)
    x509.load_der_x509_certificate(card.auth_certificate_der)  # parseable
    # The device: the read stands, not verified on the device (no crash in the check).
    r = _read(card, _device_store(jpki_roots_dir))
    assert r.certificate_check.status is CertificateStatus.NOT_VERIFIED_ON_DEVICE
    assert r.certificate_check.platform_checkable
    # The platform: a signed "untrusted", not a 500.
    with scene.client() as platform:
        answer = platform.http.request_json(
            "POST",
            "/v1/certificate-checks",
            body={"certificate": b64e_std(card.auth_certificate_der)},
        )
        body = verify_document(answer, "certificate_check", scene.hub_key)
        assert body["status"] == "untrusted"
        assert body["error"]["code"] == "untrusted_issuer"
        checked = check_with_platform(platform, r)
    assert checked.certificate_check.status is CertificateStatus.UNTRUSTED
    assert isinstance(checked.certificate_check.error, PlatformRefused)
    assert checked.certificate_check.error.detail == "untrusted_issuer"


def test_bundle_pins_the_generation_and_never_rolls_back(
    scene: Scene, jpki_roots_dir: Path, tmp_path: Path
) -> None:
    state = TrustBundleFile(tmp_path / "trust-bundle.json", scene.hub_key)
    with scene.client() as platform:
        bundle = fetch_trust_bundle(platform, state)
    assert bundle.version == 3
    fp = fingerprint(scene.root.public_bytes(serialization.Encoding.DER))
    assert [(r.name, r.sha256, r.test) for r in bundle.roots] == [("auth-gen3", fp, False)]
    # Now the device verifies the generation itself.
    store = apply_bundle(_device_store(jpki_roots_dir), state.load())
    r = _read(scene.image, store)
    assert r.certificate_check.status is CertificateStatus.TRUSTED
    assert r.verdict is not None
    assert r.verdict.root == "auth-gen3"
    # An expired entry is not applied.
    assert (
        _read(
            scene.image,
            apply_bundle(_device_store(jpki_roots_dir), bundle, now=NOW.replace(year=2040)),
        ).certificate_check.status
        is CertificateStatus.NOT_VERIFIED_ON_DEVICE
    )
    # The platform's operator lowers the version: the device refuses to go back.
    scene.pins(2)
    try:
        with scene.client() as platform, pytest.raises(TrustBundleRollback):
            fetch_trust_bundle(platform, state)
    finally:
        scene.pins(3)
    assert state.version == 3


def _signed(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return signed_document("trust_bundle", body, key, "hub:test")


def _body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": "kyukyu-trust-bundle-v1",
        "version": 1,
        "issued_at": NOW.isoformat(),
        "roots": [],
        "cvc_ca_keys": [],
    }
    body.update(over)
    return body


def test_bundle_only_from_the_platform(tmp_path: Path) -> None:
    hub, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    state = TrustBundleFile(tmp_path / "b.json", hub.public_key())
    with pytest.raises(TrustBundleError):
        state.accept(_signed(_body(), stranger))
    doc = _signed(_body(version=5), hub)
    doc["trust_bundle"]["version"] = 6  # changed after signing
    with pytest.raises(TrustBundleError):
        state.accept(doc)
    assert state.accept(_signed(_body(version=5), hub)).version == 5
    with pytest.raises(TrustBundleRollback):
        state.accept(_signed(_body(version=4), hub))
    assert state.version == 5
    for bad in (_body(format="x"), _body(version=-1), _body(roots=[{"name": "x"}])):
        with pytest.raises(TrustBundleError):
            parse_trust_bundle(_signed(bad, hub), hub.public_key())


def test_test_entries_need_a_device_in_test_mode() -> None:
    hub = Ed25519PrivateKey.generate()
    ca = TestCA.create(key_factory=KeyPool(1))
    der = ca.auth_root.public_bytes(serialization.Encoding.DER)
    from sync.signed import b64e

    entry = {
        "name": "test",
        "purpose": "auth",
        "sha256": fingerprint(der),
        "not_after": "2040-01-01",
        "test": True,
        "certificate": b64e(der),
    }
    doc = _signed(_body(roots=[entry]), hub)
    with pytest.raises(TrustBundleError):
        parse_trust_bundle(doc, hub.public_key())
    assert parse_trust_bundle(doc, hub.public_key(), allow_test=True).roots[0].test
    # A wrong fingerprint for the certificate it carries: refused.
    doc = _signed(_body(roots=[{**entry, "sha256": "00" * 32}]), hub)
    with pytest.raises(TrustBundleError):
        parse_trust_bundle(doc, hub.public_key(), allow_test=True)


def test_operator_pins_file() -> None:
    pins = read_operator_pins(b'{"version": 2, "roots": [], "cvc_ca_keys": []}')
    assert pins.version == 2
    for bad in (b"[]", b'{"version": -1}', b'{"roots": [{"name": "x"}]}', b"{"):
        with pytest.raises(MalformedData):
            read_operator_pins(bad)


def test_device_trust_store_applies_the_accepted_bundle(
    scene: Scene, jpki_roots_dir: Path, tmp_path: Path
) -> None:
    from edge.settings import DeviceSettings
    from edge.trust_bundle import device_trust_store
    from sync.signing import public_key_to_b64

    settings = DeviceSettings(
        data_dir=tmp_path, roots_dir=jpki_roots_dir, hub_public_key=public_key_to_b64(scene.hub_key)
    )
    before = device_trust_store(settings)
    assert before is not None
    assert _read(scene.image, before).certificate_check.platform_checkable
    with scene.client() as platform:
        fetch_trust_bundle(platform, TrustBundleFile(settings.trust_bundle_path, scene.hub_key))
    after = device_trust_store(settings)
    assert after is not None
    assert _read(scene.image, after).certificate_check.trusted
    # A bundle file changed on the device's disk is refused; the pinned roots still work.
    doc = json.loads(settings.trust_bundle_path.read_text())
    doc["trust_bundle"]["version"] = 99
    settings.trust_bundle_path.write_text(json.dumps(doc))
    with pytest.raises(TrustBundleError):
        TrustBundleFile(settings.trust_bundle_path, scene.hub_key).load()
    fallback = device_trust_store(settings)
    assert fallback is not None
    assert fallback.anchors == before.anchors
