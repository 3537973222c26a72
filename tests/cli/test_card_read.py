"""``kyukyu card read`` through pyscard -> pcscd -> vpcd -> the virtual card (and nfcpy udp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.card_sim import CardImage, NfcUdpFrontEnd, Quirks, TestCA, VirtualCard
from edge.jpki.revocation import RevocationSnapshot
from edge.reader.pcsc import PcscReaders
from tests.components import Pcscd

from .conftest import Plugged, free_udp_port, run_cli

pytestmark = pytest.mark.pcscd

PROJECT = Path(__file__).resolve().parents[2]


def _args(reader: str, roots: Path, *extra: str) -> list[str]:
    return [
        "card",
        "read",
        "--reader",
        reader,
        "--roots",
        str(roots),
        "--allow-test-roots",
        "--timeout",
        "10",
        "--json",
        *extra,
    ]


def test_full_read_in_a_subprocess(
    plug: Callable[[CardImage], Plugged], cli_ca: TestCA, roots_dir: Path
) -> None:
    image = cli_ca.issue_card()
    _card, _fe, name = plug(image)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kyukyu",
            *_args(name, roots_dir, "--pin-stdin", "--collation-b", image.collation_b),
        ],
        input="1234\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["token_type"] == "card"
    assert out["transport"] == "pcsc"
    assert out["reader"] == name
    cert = image.auth_certificate
    assert out["certificate"]["serial"] == f"{cert.serial_number:X}"
    assert out["certificate"]["subject"] == cert.subject.rfc4514_string()
    assert out["certificate"]["not_after"].endswith("23:59:59+09:00")
    assert out["verdict"]["trusted"] is True
    assert out["verdict"]["test_root"] is True
    assert out["certificate"]["status"] == "trusted"
    assert out["pin_proof"]["status"] == "verified"
    assert out["attributes"]["status"] == "verified"
    assert out["attributes"]["values"]["name"] == image.holder.name
    assert out["attributes"]["values"]["birth_date"] == image.holder.birth_date.isoformat()
    assert out["card_presence"]["status"] == "verified"
    assert out["attributes_integrity"] is True
    assert "error" not in out
    assert [p["kind"] for p in out["proof_of_possession"]] == ["auth_key", "card_presence"]
    assert out["apdus"] > 0
    # Nothing about the holder on stderr (logs).
    assert image.holder.name not in proc.stderr
    assert "1234" not in proc.stderr


def test_certificate_only(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = cli_ca.issue_card()
    _card, _fe, name = plug(image)
    rc, out = run_cli(_args(name, roots_dir), capsys, monkeypatch)
    assert rc == 0
    assert out["attributes"]["status"] == "not_requested"  # type: ignore[index]
    assert out["attributes"]["values"] is None  # type: ignore[index]
    n = len(image.auth_certificate_der)
    assert out["apdus"] == 4 + -(-n // 256)


def test_test_root_refused_without_test_mode(
    roots_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [a for a in _args("Virtual PCD 00 00", roots_dir) if a != "--allow-test-roots"]
    rc, out = run_cli(args, capsys, monkeypatch)
    assert rc == 2
    err = out["error"]
    assert isinstance(err, dict)
    assert err["code"] == "test_root_refused"
    assert err["message_ja"]
    assert err["message_en"]


def test_real_roots_refuse_a_test_card(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    jpki_roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _card, _fe, name = plug(cli_ca.issue_card())
    args = [a for a in _args(name, jpki_roots_dir) if a != "--allow-test-roots"]
    rc, out = run_cli(args, capsys, monkeypatch)
    assert rc == 4  # certificate not trusted on this device
    assert out["error"]["code"] == "untrusted_issuer"  # type: ignore[index]
    assert out["certificate"]["status"] == "not_verified_on_device"  # type: ignore[index]
    assert out["certificate"]["trusted"] is False  # type: ignore[index]
    assert out["verdict"] is None


def test_removed_mid_read_then_next_tap_works(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card, fe, name = plug(cli_ca.issue_card())
    card.quirks = Quirks(remove_after_apdus=5)
    rc, out = run_cli(_args(name, roots_dir), capsys, monkeypatch)
    assert rc == 1
    assert out == {"error": out["error"]}  # no partial result
    assert out["error"]["code"] == "card_removed"  # type: ignore[index]
    with PcscReaders() as readers:
        readers.wait_for_removal(name, timeout=10)
    fe.insert()  # the next tap
    rc, out = run_cli(_args(name, roots_dir), capsys, monkeypatch)
    assert rc == 0
    assert out["verdict"]["trusted"] is True  # type: ignore[index]


def test_wrong_pin_reports_tries_left(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _card, _fe, name = plug(cli_ca.issue_card(pin="1234"))
    rc, out = run_cli(_args(name, roots_dir, "--pin-stdin"), capsys, monkeypatch, stdin="9999\n")
    assert rc == 5  # certificate trusted, the PIN proof not
    assert out["error"]["code"] == "wrong_pin"  # type: ignore[index]
    assert out["error"]["tries_left"] == 2  # type: ignore[index]
    assert out["pin_proof"]["status"] == "failed"  # type: ignore[index]
    assert out["pin_proof"]["error"]["tries_left"] == 2  # type: ignore[index]
    assert out["certificate"]["status"] == "trusted"  # type: ignore[index]


def test_revoked(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = cli_ca.issue_card()
    _card, _fe, name = plug(image)
    snap = tmp_path / "revoked.bin"
    RevocationSnapshot.from_serials([image.auth_certificate.serial_number, 5]).save(snap)
    rc, out = run_cli(_args(name, roots_dir, "--revoked", str(snap)), capsys, monkeypatch)
    assert rc == 4
    assert out["error"]["code"] == "certificate_revoked"  # type: ignore[index]
    assert out["certificate"]["status"] == "untrusted"  # type: ignore[index]


def test_android_without_pin(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _card, _fe, name = plug(cli_ca.issue_card(profile="android"))
    rc, out = run_cli(_args(name, roots_dir), capsys, monkeypatch)
    assert rc == 1
    assert out["error"]["code"] == "pin_required"  # type: ignore[index]
    rc, out = run_cli(_args(name, roots_dir, "--pin-stdin"), capsys, monkeypatch, stdin="1234\n")
    assert rc == 0
    assert out["token_type"] == "android"


def test_no_card_times_out(
    pcscd: Pcscd,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = _args(pcscd.readers[1], roots_dir)
    args[args.index("--timeout") + 1] = "0.5"
    rc, out = run_cli(args, capsys, monkeypatch)
    assert rc == 1
    assert out["error"]["code"] == "no_card"  # type: ignore[index]


def test_through_nfcpy_udp(
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = cli_ca.issue_card()
    port = free_udp_port()
    with NfcUdpFrontEnd(VirtualCard(image), "127.0.0.1", port):
        args = [
            "card",
            "read",
            "--transport",
            "nfc",
            "--nfc-path",
            f"udp:127.0.0.1:{port}",
            "--roots",
            str(roots_dir),
            "--allow-test-roots",
            "--timeout",
            "10",
            "--pin-stdin",
            "--collation-b",
            image.collation_b,
            "--json",
        ]
        rc, out = run_cli(args, capsys, monkeypatch, stdin="1234\n")
    assert rc == 0, out
    assert out["transport"] == "nfc"
    assert (
        out["certificate"]["sha256"]
        == __import__("hashlib")
        .sha256(  # type: ignore[index]
            image.auth_certificate_der
        )
        .hexdigest()
    )
    assert out["attributes"]["values"]["address"] == image.holder.address  # type: ignore[index]


def test_internal_error_keeps_the_json_contract(
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge.reader import LoopbackConnection
    from kyukyu.commands import card as card_cmd

    image = cli_ca.issue_card()

    def fake_connect(args: object, stack: object) -> tuple[LoopbackConnection, str]:
        return LoopbackConnection(VirtualCard(image)), "loopback"

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError(image.holder.name)

    monkeypatch.setattr(card_cmd, "_connect", fake_connect)
    monkeypatch.setattr("edge.jpki.read.read_card", broken)
    rc, out = run_cli(_args("x", roots_dir), capsys, monkeypatch)
    assert rc == 3
    assert out["error"]["code"] == "internal_error"  # type: ignore[index]
    assert image.holder.name not in json.dumps(out, ensure_ascii=False)


def test_loopback_card_read_without_pcscd(
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge.reader import LoopbackConnection
    from kyukyu.commands import card as card_cmd

    image = cli_ca.issue_card()
    monkeypatch.setattr(
        card_cmd, "_connect", lambda a, s: (LoopbackConnection(VirtualCard(image)), "loopback")
    )
    rc, out = run_cli(
        _args("x", roots_dir, "--collation-b", image.collation_b, "--photo"), capsys, monkeypatch
    )
    assert rc == 0
    assert out["photo"]["bytes"] == len(image.photo)  # type: ignore[index]
    rc, out = run_cli(_args("x", roots_dir, "--pin-stdin"), capsys, monkeypatch, stdin="12a4\n")
    assert rc == 2  # refused before waiting for a card
    assert out["error"]["code"] == "invalid_pin_format"  # type: ignore[index]


class ForeignCard(VirtualCard):
    """Some other contact card in the reader: no My Number applications."""

    def process(self, apdu: bytes) -> bytes:
        super().process(b"\x00\xa4\x04\x0c\x01\x00")  # keeps presence and quirks behaviour
        return bytes.fromhex("6A82")


def test_not_a_my_number_card_through_pcscd(
    pcscd: Pcscd,
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge.card_sim import VpcdFrontEnd

    name = pcscd.readers[0]
    fe = VpcdFrontEnd(ForeignCard(cli_ca.issue_card()), pcscd.host, pcscd.ports[0]).start()
    try:
        assert fe.wait_connected(10)
        rc, out = run_cli(_args(name, roots_dir), capsys, monkeypatch)
    finally:
        fe.stop()
        with PcscReaders() as readers:
            readers.wait_for_removal(name, timeout=10)
    assert rc == 1
    assert out["error"]["code"] == "not_my_number_card"  # type: ignore[index]
    assert "マイナンバーカード" in out["error"]["message_ja"]  # type: ignore[index]


@pytest.mark.opensc
def test_same_bytes_as_opensc(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64
    import hashlib
    import shutil

    tool = shutil.which("pkcs15-tool")
    if tool is None:
        pytest.fail("pkcs15-tool is not installed (Debian package opensc): run scripts/bootstrap")
    image = cli_ca.issue_card()
    _card, _fe, name = plug(image)
    with PcscReaders() as readers:
        idx = str(readers.list().index(name))
    res = subprocess.run(
        [tool, "--reader", idx, "--read-certificate", "01"], capture_output=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    pem = res.stdout[res.stdout.index(b"-----BEGIN CERTIFICATE-----") :].decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    opensc_der = base64.b64decode(body)
    rc, out = run_cli(
        _args(name, roots_dir, "--pin-stdin", "--challenge", "00ff" * 16),
        capsys,
        monkeypatch,
        stdin="1234\n",
    )
    assert rc == 0
    assert out["certificate"]["sha256"] == hashlib.sha256(opensc_der).hexdigest()  # type: ignore[index]
    assert out["proof_of_possession"][0]["challenge"] == "00ff" * 16  # type: ignore[index]


def _era_collation_b(image: CardImage) -> str:
    """照合番号B as a paramedic reads it off the card face: the era year, not the Western one."""
    from edge.jpki.era import collation_b_birth_part

    h = image.holder
    return collation_b_birth_part(h.birth_date) + f"{image.card_expiry.year}" + h.security_code


def test_collation_b_reads_everything_verified(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = cli_ca.issue_card()
    _card, _fe, name = plug(image)
    rc, out = run_cli(
        _args(name, roots_dir, "--collation-b", _era_collation_b(image)), capsys, monkeypatch
    )
    assert rc == 0, out
    assert out["certificate"]["status"] == "trusted"  # type: ignore[index]
    attrs = out["attributes"]
    assert attrs["status"] == "verified"  # type: ignore[index]
    assert attrs["values"] == {  # type: ignore[index]
        "name": image.holder.name,
        "address": image.holder.address,
        "birth_date": image.holder.birth_date.isoformat(),
        "sex": image.holder.sex,
    }
    assert out["card_presence"]["status"] == "verified"  # type: ignore[index]
    assert out["attributes_integrity"] is True


def test_tampered_attribute_is_refused_as_tampered(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    image = cli_ca.issue_card()
    # The card's EF 0002 changed after issue (its EF 0003 was signed over the old one).
    image.holder = dataclasses.replace(image.holder, address=image.holder.address + "X")
    _card, _fe, name = plug(image)
    rc, out = run_cli(
        _args(name, roots_dir, "--collation-b", image.collation_b), capsys, monkeypatch
    )
    assert rc == 6
    assert out["attributes"]["status"] == "tampered"  # type: ignore[index]
    assert out["attributes"]["values"] is None  # type: ignore[index]
    assert out["error"]["code"] == "integrity_error"  # type: ignore[index]
    assert out["certificate"]["status"] == "trusted"  # type: ignore[index]
    assert image.holder.address not in json.dumps(out, ensure_ascii=False)


def test_ef0004_from_an_unpinned_ca(
    plug: Callable[[CardImage], Plugged],
    cli_ca: TestCA,
    roots_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge.card_sim import KeyPool

    trusted = cli_ca.issue_card()
    other = TestCA.create(key_factory=KeyPool(2))  # its CVC CA key id is in no roots dir
    image = other.issue_card(key_factory=cli_ca.key_factory)
    # The JPKI AP from a card the device trusts; the text AP under the unpinned CVC CA.
    image.auth_key, image.auth_certificate_der = trusted.auth_key, trusted.auth_certificate_der
    image.auth_ca_der = trusted.auth_ca_der
    _card, _fe, name = plug(image)
    rc, out = run_cli(
        _args(name, roots_dir, "--collation-b", image.collation_b), capsys, monkeypatch
    )
    assert rc == 5  # certificate trusted, a part asked for not verified
    assert out["certificate"]["status"] == "trusted"  # type: ignore[index]
    assert out["attributes"]["status"] == "not_verified"  # type: ignore[index]
    assert out["attributes"]["error"]["code"] == "cvc_ca_not_pinned"  # type: ignore[index]
    # Shown, marked not verified (never as verified).
    assert out["attributes"]["values"]["name"] == image.holder.name  # type: ignore[index]
    assert out["attributes"]["verified"] is False  # type: ignore[index]
    assert out["attributes_integrity"] is False
    assert out["card_presence"]["status"] == "not_verified"  # type: ignore[index]
    assert out["error"]["code"] == "cvc_ca_not_pinned"  # type: ignore[index]


def test_malformed_collation_b_says_japanese_era(
    roots_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, out = run_cli(_args("x", roots_dir, "--collation-b", "19800217203012"), capsys, monkeypatch)
    assert rc == 2  # refused before waiting for a card
    assert out["error"]["code"] == "invalid_collation_b"  # type: ignore[index]
    assert "和暦" in out["error"]["message_ja"]  # type: ignore[index]
    assert "Japanese era" in out["error"]["message_en"]  # type: ignore[index]


def test_era_helper(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out = run_cli(["card", "era", "1980-02-17"], capsys, monkeypatch)
    assert rc == 0
    assert out["collation_b_birth"] == "550217"
    assert out["printed"] == "昭和55年2月17日"
    rc, out = run_cli(["card", "era", "19890108"], capsys, monkeypatch)
    assert rc == 0
    assert (out["printed"], out["collation_b_birth"]) == ("平成元年1月8日", "010108")
    rc, out = run_cli(["card", "era", "1980-02-30"], capsys, monkeypatch)
    assert rc == 2
    assert out["error"]["code"] == "birth_date_not_a_date"  # type: ignore[index]
    assert "存在しない日付" in out["error"]["message_ja"]  # type: ignore[index]
    rc, out = run_cli(["card", "era", "1868-10-22"], capsys, monkeypatch)
    assert rc == 2
    assert out["error"]["code"] == "birth_date_before_meiji"  # type: ignore[index]


def test_help_says_japanese_era(capsys: pytest.CaptureFixture[str]) -> None:
    from kyukyu.cli import main

    with pytest.raises(SystemExit):
        main(["card", "read", "--help"])
    text = capsys.readouterr().out
    assert "Japanese era" in text
    assert "550217" in text
    assert "exit codes" in text
