"""``kyukyu card-sim``: issue, serve (vpcd and nfcpy udp, in a real subprocess), revoke."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from edge.card_sim import CardImage, TestCA
from edge.reader import ApduChannel
from edge.reader.nfc import NfcReader
from edge.reader.pcsc import PcscReaders
from kyukyu.cli import main
from tests.components import Pcscd

from .conftest import free_udp_port
from .helpers import read_der, select_ap, select_ef, verify


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cli")
    ca_dir, card = d / "ca", d / "card.json"
    assert main(["card-sim", "issue", "--ca", str(ca_dir), "--out", str(card), "--seed", "7"]) == 0
    return ca_dir, card


def test_issue_writes_card_and_ca(
    issued: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir, card = issued
    image = CardImage.load(card)
    ca = TestCA.load(ca_dir)
    image.auth_certificate.verify_directly_issued_by(ca.auth_root)
    # A second card from the same CA directory, Android profile.
    out = card.parent / "android.json"
    assert (
        main(["card-sim", "issue", "--ca", str(ca_dir), "--out", str(out), "--profile", "android"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["profile"] == "android"
    phone = CardImage.load(out)
    phone.auth_certificate.verify_directly_issued_by(ca.phone_auth_root)
    assert summary["auth_serial"] == phone.auth_certificate.serial_number
    # The CA directory holds certificates and the CVC CA public key as *.pem (a test
    # roots directory), keys as *.key only.
    assert sorted(p.name for p in ca_dir.glob("*.pem")) == [
        "auth_root.pem", ca.cvc_ca_filename, "phone_auth_root.pem", "sign_root.pem",
    ]  # fmt: skip
    assert ca.cvc_ca_filename == f"cvc-ca-{ca.cvc_ca_key_id.hex().upper()}.pem"


def test_issue_rejects_bad_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = TestCA.create(tmp_path / "ca")
    assert ca.directory is not None
    rc = main(
        [
            "card-sim",
            "issue",
            "--ca",
            str(tmp_path / "ca"),
            "--out",
            str(tmp_path / "c.json"),
            "--pin",
            "12",
        ]
    )
    assert rc == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["code"] == "bad_argument"
    assert not (tmp_path / "c.json").exists()


def test_revoke(issued: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir, card = issued
    serial = CardImage.load(card).auth_certificate.serial_number
    assert main(["card-sim", "revoke", "--ca", str(ca_dir), hex(serial)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert serial in out["revoked_serials"]
    ca = TestCA.load(ca_dir)
    assert serial in ca.revoked_serials
    crl = x509.load_der_x509_crl(ca.crl())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(ca.auth_root.public_key())  # type: ignore[arg-type]
    from edge.jpki.revocation import RevocationSnapshot

    assert serial in RevocationSnapshot.load(ca_dir / "revoked.snapshot")


@contextmanager
def _serving(*args: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-m", "kyukyu", "card-sim", "serve", *args, "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "serving" in line, proc.stderr.read() if proc.stderr else line
            yield proc
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.pcscd
def test_serve_vpcd_counters_written_back(issued: tuple[Path, Path], pcscd: Pcscd) -> None:
    _ca, card = issued
    image = CardImage.load(card)
    name = pcscd.readers[1]
    with _serving(str(card), "--vpcd", "--port", str(pcscd.ports[1])), PcscReaders() as readers:
        conn = readers.wait_for_card(name, timeout=15)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        assert read_der(ch, 0x000A) == image.auth_certificate_der
        select_ef(ch, 0x0018)
        assert verify(ch, "0000").sw == 0x63C2
        conn.close()
    with PcscReaders() as readers:
        readers.wait_for_removal(name, timeout=10)
    assert CardImage.load(card).tries["auth_pin"] == 2


def test_serve_nfc_udp_with_quirk(issued: tuple[Path, Path]) -> None:
    _ca, card = issued
    image = CardImage.load(card)
    port = free_udp_port()
    with (
        _serving(str(card), "--nfc-udp", str(port), "--quirk", "read_chunk=50"),
        NfcReader(f"udp:127.0.0.1:{port}") as reader,
    ):
        conn = reader.wait_for_card(timeout=15)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        assert read_der(ch, 0x000A) == image.auth_certificate_der
        assert ch.stats.apdus > 2 + len(image.auth_certificate_der) // 50
        conn.close()


def test_serve_rejects_unknown_quirk(
    issued: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _ca, card = issued
    assert main(["card-sim", "serve", str(card), "--vpcd", "--quirk", "nope=1"]) == 1
    assert "unknown quirk" in capsys.readouterr().out
