"""``kyukyu provision trust install``: pinned J-LIS roots only (or a test CA on request)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from edge.jpki import JpkiError
from edge.jpki.trust import TrustStore
from edge.provision import DeviceLayout, install_roots
from edge.settings import load_device_settings
from tests.provision._tree import tree_digest
from tests.provision.conftest import run_cli, run_json

AUTH_2023 = "64114F29620C24ED2631D46476A040E7EE740D956089C00B036A6A8118C322B5"


def _impostor(real: Path, out: Path) -> Path:
    """A freshly generated root with the same subject (and issuer) as a real J-LIS root."""
    genuine = x509.load_pem_x509_certificate(real.read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(genuine.subject)
        .issuer_name(genuine.subject)
        .public_key(key.public_key())
        .serial_number(genuine.serial_number)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    cert = builder.sign(key, hashes.SHA256())
    assert cert.subject == genuine.subject
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


def _roots(root: Path) -> set[str]:
    return {p.name for p in (root / "etc/kyukyu/jpki-roots").glob("*")}


def test_real_jlis_roots_are_accepted(
    tmp_path: Path, jpki_roots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(str(p) for p in jpki_roots_dir.glob("*.pem"))
    rc, out = run_json(capsys, "provision", "trust", "install", "--root", str(tmp_path), *files)
    assert rc == 0
    by_name = {r["name"]: r for r in out["roots"]}  # type: ignore[union-attr]
    assert by_name["auth-2023"]["status"] == "installed"
    assert by_name["auth-2023"]["sha256"] == AUTH_2023
    assert by_name["sign-2023"]["status"] == "installed"
    # The 2015 generation matches its pins but expired on 2025-10-19: reported, skipped.
    for old in ("auth-2015", "sign-2015"):
        assert by_name[old]["status"] == "expired"
        assert "2025-10-19" in by_name[old]["reason"]
    assert _roots(tmp_path) == {"auth-2023.pem", "sign-2023.pem"}
    for f in (tmp_path / "etc/kyukyu/jpki-roots").iterdir():
        assert f.stat().st_mode & 0o777 == 0o644
    # The device loads them as production anchors (no test mode).
    settings = load_device_settings(tmp_path / "etc/kyukyu/edge.env")
    assert settings.roots_dir == Path("/etc/kyukyu/jpki-roots")
    assert settings.test_roots is False
    store = TrustStore.from_directory(tmp_path / "etc/kyukyu/jpki-roots")
    assert {a.name for a in store.anchors} == {"auth-2023", "sign-2023"}
    # Human output says the same, one line each; a second run changes nothing.
    before = tree_digest(tmp_path)
    rc, text, _ = run_cli(capsys, "provision", "trust", "install", "--root", str(tmp_path), *files)
    assert rc == 0
    assert "skipped auth-2015" in text
    assert "unchanged auth-2023" in text
    assert tree_digest(tmp_path) == before


def test_before_expiry_the_2015_roots_are_installed(tmp_path: Path, jpki_roots_dir: Path) -> None:
    report = install_roots(
        DeviceLayout(tmp_path),
        [jpki_roots_dir / "auth-ca-2015.pem"],
        now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    )
    assert report.ok
    assert [o.status for o in report.outcomes] == ["installed"]
    assert _roots(tmp_path) == {"auth-2015.pem"}


def test_generated_root_with_the_same_subject_is_refused(
    tmp_path: Path, jpki_roots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _impostor(jpki_roots_dir / "auth-ca-2023.pem", tmp_path / "auth-ca-2023.pem")
    real = jpki_roots_dir / "sign-ca-2023.pem"
    root = tmp_path / "root"
    root.mkdir()
    rc, out = run_json(
        capsys, "provision", "trust", "install", "--root", str(root), str(real), str(fake)
    )
    assert rc == 1
    assert out["ok"] is False
    refused = [r for r in out["roots"] if r["status"] == "refused"]  # type: ignore[union-attr]
    assert len(refused) == 1
    assert refused[0]["source"] == str(fake)
    assert "pinned" in refused[0]["reason"]
    # All or nothing: the genuine root given alongside is not installed either.
    assert not (root / "etc/kyukyu/jpki-roots").exists()
    assert not (root / "etc/kyukyu/edge.env").exists()
    rc, _, err = run_cli(capsys, "provision", "trust", "install", "--root", str(root), str(fake))
    assert rc == 1
    assert "REFUSED" in err


def test_test_ca_only_with_the_explicit_flag(
    tmp_path: Path, jpki_roots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _impostor(jpki_roots_dir / "auth-ca-2023.pem", tmp_path / "test-ca.pem")
    root = tmp_path / "root"
    root.mkdir()
    rc, out = run_json(
        capsys, "provision", "trust", "install", "--root", str(root), "--test-ca", str(fake)
    )
    assert rc == 0
    assert out["test_mode"] is True
    (entry,) = out["roots"]  # type: ignore[misc]
    assert entry["test"] is True
    assert entry["name"].startswith("test-")
    settings = load_device_settings(root / "etc/kyukyu/edge.env")
    assert settings.test_roots is True
    roots = root / "etc/kyukyu/jpki-roots"
    with pytest.raises(JpkiError):  # a production device would not load it
        TrustStore.from_directory(roots)
    store = TrustStore.from_directory(roots, allow_test_roots=True)
    assert [a.test for a in store.anchors] == [True]


def test_files_that_are_not_root_certificates_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "leaf")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    leaf_file = tmp_path / "leaf.der"
    leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.DER))
    rc, out = run_json(
        capsys,
        "provision",
        "trust",
        "install",
        "--root",
        str(tmp_path),
        "--test-ca",
        str(junk),
        str(leaf_file),
        str(tmp_path / "missing.pem"),
    )
    assert rc == 1
    reasons = [r["reason"] for r in out["roots"]]  # type: ignore[union-attr]
    assert reasons[0] == "not an X.509 certificate"
    assert "not a CA" in reasons[1]
    assert "No such file" in reasons[2]


def test_cvc_ca_keys_install_as_the_device_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text-AP CVC CA key file: a test key only with --test-ca; a pinned key id with
    another key is refused; the installed file is what TrustStore loads."""
    from edge.card_sim import KeyPool, TestCA
    from edge.jpki.trust import PINNED_CVC_CA_KEYS

    ca = TestCA.create(tmp_path / "ca", key_factory=KeyPool(1))
    key_file = tmp_path / ca.cvc_ca_filename
    key_file.write_bytes(ca.cvc_ca_pem())
    pinned_id = next(iter(PINNED_CVC_CA_KEYS)).hex().upper()
    forged = tmp_path / f"cvc-ca-{pinned_id}.pem"
    forged.write_bytes(ca.cvc_ca_pem())  # the test key under a production key id
    root = tmp_path / "root"
    root.mkdir()
    args = ("provision", "trust", "install", "--root", str(root))
    rc, out = run_json(capsys, *args, str(key_file))
    assert rc == 1
    assert out["roots"][0]["status"] == "refused"  # type: ignore[index]
    assert not (root / "etc/kyukyu/jpki-roots").exists()
    rc, out = run_json(capsys, *args, "--test-ca", str(forged))
    assert rc == 1
    assert out["roots"][0]["reason"] == "root_not_pinned"  # type: ignore[index]
    test_root = tmp_path / "test-root.pem"
    test_root.write_bytes(ca.auth_root.public_bytes(serialization.Encoding.PEM))
    rc, out = run_json(capsys, *args, "--test-ca", str(test_root), str(key_file))
    assert rc == 0, out
    assert out["test_mode"] is True
    names = [r["name"] for r in out["roots"]]  # type: ignore[union-attr]
    assert names[1] == ca.cvc_ca_filename.removesuffix(".pem")
    assert _roots(root) == {f"{names[0]}.pem", ca.cvc_ca_filename}
    store = TrustStore.from_directory(root / "etc/kyukyu/jpki-roots", allow_test_roots=True)
    assert ca.cvc_ca_key_id in store.cvc_keys
    rc, out = run_json(capsys, *args, "--test-ca", str(test_root), str(key_file))
    assert rc == 0
    assert [r["status"] for r in out["roots"]] == ["unchanged", "unchanged"]  # type: ignore[union-attr]


def test_bundled_roots_install_and_doctor_accepts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--bundled: the roots shipped in the package, pin-checked; doctor's roots check is OK."""
    args = ("provision", "trust", "install", "--root", str(tmp_path), "--bundled")
    rc, out = run_json(capsys, *args)
    assert rc == 0, out
    assert out["test_mode"] is False
    by_name = {r["name"]: r for r in out["roots"]}  # type: ignore[union-attr]
    assert by_name["auth-2023"] == {
        "source": "bundled:auth-ca-2023.pem",
        "sha256": AUTH_2023,
        "name": "auth-2023",
        "status": "installed",
        "test": False,
        "not_after": "2033-07-15T14:59:59+00:00",
    }
    assert by_name["sign-2023"]["status"] == "installed"
    assert {by_name[n]["status"] for n in ("auth-2015", "sign-2015")} == {"expired"}
    assert _roots(tmp_path) == {"auth-2023.pem", "sign-2023.pem"}
    settings = load_device_settings(tmp_path / "etc/kyukyu/edge.env")
    assert settings.roots_dir == Path("/etc/kyukyu/jpki-roots")
    assert settings.test_roots is False
    rc, doctor = run_json(capsys, "doctor", "--root", str(tmp_path), "--no-card-test")
    (roots,) = [c for c in doctor["checks"] if c["id"] == "roots"]  # type: ignore[union-attr]
    assert roots["status"] == "ok", roots
    assert "auth-2023, sign-2023" in roots["message_en"]
    before = tree_digest(tmp_path)
    rc, text, _ = run_cli(capsys, *args)
    assert rc == 0
    assert "unchanged auth-2023" in text
    assert tree_digest(tmp_path) == before


def test_bundled_and_files_together_all_or_nothing(
    tmp_path: Path, jpki_roots_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _impostor(jpki_roots_dir / "auth-ca-2023.pem", tmp_path / "extra.pem")
    root = tmp_path / "root"
    root.mkdir()
    args = ("provision", "trust", "install", "--root", str(root), "--bundled")
    rc, out = run_json(capsys, *args, str(fake))
    assert rc == 1
    assert [r["source"] for r in out["roots"] if r["status"] == "refused"] == [str(fake)]  # type: ignore[union-attr]
    assert not (root / "etc/kyukyu").exists()


def test_a_tampered_bundled_root_installs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package's copy altered after release: refused by its pin, nothing written."""
    import edge.jpki.bundled as bundled

    copy = tmp_path / "roots"
    copy.mkdir()
    for r in bundled.bundled_roots():
        (copy / r.file).write_bytes(r.pem())
    target = copy / "sign-ca-2023.pem"
    cert = x509.load_pem_x509_certificate(target.read_bytes())
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # one bit of the signature: still a certificate, another SHA-256
    target.write_bytes(
        x509.load_der_x509_certificate(bytes(der)).public_bytes(serialization.Encoding.PEM)
    )
    monkeypatch.setattr(bundled, "_folder", lambda: copy)
    root = tmp_path / "root"
    root.mkdir()
    args = ("provision", "trust", "install", "--root", str(root), "--bundled")
    rc, out = run_json(capsys, *args)
    assert rc == 1
    (entry,) = out["roots"]  # type: ignore[misc]
    assert entry["source"] == "bundled"
    assert entry["status"] == "refused"
    assert "sign-ca-2023.pem" in entry["reason"]
    assert not (root / "etc/kyukyu").exists()
    rc, _, err = run_cli(capsys, *args)
    assert rc == 1
    assert "REFUSED bundled" in err
    assert "nothing installed" in err


def test_no_file_and_no_bundled_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run_cli(capsys, "provision", "trust", "install", "--root", str(tmp_path))
    assert rc == 2
    assert "--bundled" in err
    assert not (tmp_path / "etc").exists()
