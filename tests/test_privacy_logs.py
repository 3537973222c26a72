"""No patient data in logs: a full read with every logger at DEBUG leaks no attribute,
no certificate subject, no PIN and no 照合番号B."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from edge.card_sim import CardImage, KeyPool, TestCA, VirtualCard, VpcdFrontEnd
from edge.jpki.read import ReadOptions, read_card
from edge.jpki.trust import TrustStore
from edge.reader import ApduChannel, LoopbackConnection
from edge.reader.pcsc import PcscReaders
from tests.components import Pcscd

ROOT = Path(__file__).resolve().parents[1]
PIN = "8265"


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA.create(key_factory=KeyPool(3))


@pytest.fixture(scope="module")
def image(ca: TestCA) -> CardImage:
    return ca.issue_card(pin=PIN, text_pin=PIN)


def secrets_of(image: CardImage) -> dict[str, str]:
    """Every string that must never reach a log, and hex forms of them."""
    h = image.holder
    cn = image.auth_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    family, _, given = h.name.partition("\u3000")
    plain = {
        "name": h.name,
        "family name": family,
        "given name": given,
        "address": h.address,
        "birth date": h.birth_date.strftime("%Y%m%d"),
        "birth date iso": h.birth_date.isoformat(),
        "subject CN": cn,
        "subject": image.auth_certificate.subject.rfc4514_string(),
        "collation B": image.collation_b,
        "my number": image.my_number,
        "security code": h.security_code,
    }
    out = {k: v for k, v in plain.items() if v}
    for k, v in list(out.items()):
        out[k + " (hex)"] = v.encode("utf-8").hex()
        out[k + " (HEX)"] = v.encode("utf-8").hex().upper()
    out["PIN (hex)"] = PIN.encode().hex()
    return out


def _as_a_number(value: str) -> str:
    """``value`` standing alone, not inside a longer run of hex digits."""
    return rf"(?<![0-9A-Fa-f]){re.escape(value)}(?![0-9A-Fa-f])"


def assert_clean(text: str, image: CardImage) -> None:
    assert text, "nothing was logged: the test would prove nothing"
    for what, value in secrets_of(image).items():
        if value.isdigit() and len(value) <= 6:
            # A short number (the 4-digit security code) sits by chance in one hex dump or
            # fingerprint in a few hundred (the test failed once so): as a number of its own.
            assert not re.search(_as_a_number(value), text), f"{what} appears in the logs"
        else:
            assert value not in text, f"{what} appears in the logs"
    # The PIN alone: not as a number of its own (hex dumps may contain the digits by chance).
    assert not re.search(_as_a_number(PIN), text), "PIN in the logs"


def test_full_read_in_process(
    image: CardImage, ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    store = TrustStore.from_certificates(ca.roots, allow_test_roots=True)
    caplog.set_level(logging.DEBUG)  # the root logger: every logger propagates here
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    opts = ReadOptions(trust=store, pin=PIN, collation_b=image.collation_b, read_photo=True)
    try:
        result = read_card(ApduChannel(LoopbackConnection(VirtualCard(image))), opts)
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.setLevel(level)
    assert result.attributes is not None
    assert result.attributes.name == image.holder.name  # the data is there, in the result only
    assert any(r.name == "edge.reader.apdu" for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert_clean(text, image)
    assert_clean(repr(result) + repr(opts), image)
    assert "VERIFY" in text or "0020" in text.replace(" ", "")


@pytest.mark.pcscd
def test_cli_read_with_debug_logs(
    image: CardImage, ca: TestCA, pcscd: Pcscd, tmp_path: Path
) -> None:
    roots = ca.write_roots(tmp_path / "roots")  # roots and the CVC CA key
    name = pcscd.readers[0]
    fe = VpcdFrontEnd(VirtualCard(image), pcscd.host, pcscd.ports[0]).start()
    try:
        assert fe.wait_connected(10)
        with PcscReaders() as readers:
            readers.wait_for_card(name, timeout=10).close()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "kyukyu",
                "-vv",
                "card",
                "read",
                "--reader",
                name,
                "--roots",
                str(roots),
                "--allow-test-roots",
                "--pin-stdin",
                "--collation-b",
                image.collation_b,
                "--json",
            ],
            input=PIN + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        fe.stop()
        with PcscReaders() as readers:
            readers.wait_for_removal(name, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert image.holder.name in proc.stdout  # the result carries it ...
    assert "DEBUG" in proc.stderr
    assert_clean(proc.stderr, image)  # ... the logs never do


def test_the_check_can_fail(image: CardImage) -> None:
    for leak in (image.holder.address, f"pin={PIN}", image.holder.name.encode().hex()):
        with pytest.raises(AssertionError):
            assert_clean("DEBUG something " + leak, image)
