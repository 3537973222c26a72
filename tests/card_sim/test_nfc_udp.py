"""The simulator through nfcpy's udp driver: the reader side is edge.reader.nfc."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from edge.card_sim import CardImage, NfcUdpFrontEnd, Quirks, VirtualCard
from edge.reader import ApduChannel, CardRemoved, CommandApdu
from edge.reader.nfc import NfcReader

from .helpers import read, read_der, select_ap, select_ef, verify

NfcPlugged = tuple[VirtualCard, NfcUdpFrontEnd, str]
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def test_read_and_sign_over_nfc(nfc_card: NfcPlugged) -> None:
    card, fe, path = nfc_card
    with NfcReader(path) as reader:
        conn = reader.wait_for_card(timeout=10)
        assert conn.transport == "nfc"
        assert conn.atr.startswith(bytes.fromhex("3B888001"))
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        assert read_der(ch, 0x000A) == card.image.auth_certificate_der
        select_ef(ch, 0x0018)
        assert verify(ch, card.image.pin).sw == 0x9000
        select_ef(ch, 0x0017)
        # A 51-byte command and a 256-byte signature: ISO-DEP chaining on the way back.
        sig = ch.send(
            CommandApdu(0x80, 0x2A, 0, 0x80, SHA256_PREFIX + hashlib.sha256(b"x").digest(), 256)
        ).data
        conn.close()
    pub = card.image.auth_certificate.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    pub.verify(sig, b"x", padding.PKCS1v15(), hashes.SHA256())
    assert fe.apdus == ch.stats.apdus


def test_long_command_is_chained(nfc_card: NfcPlugged) -> None:
    _card, _fe, path = nfc_card
    with NfcReader(path) as reader:
        conn = reader.wait_for_card(timeout=10)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        select_ef(ch, 0x0017)
        # 255 bytes of data do not fit one 253-byte I-block: the reader chains, the card ACKs.
        r = ch.send(CommandApdu(0x80, 0x2A, 0, 0x80, bytes(255), 256), check=False)
        assert r.sw == 0x6982  # reached the card whole: refused for lack of PIN, not length
        conn.close()


@pytest.mark.parametrize(
    "quirks",
    [Quirks(chain_61xx=128), Quirks(le_correction_at_eof=True), Quirks(read_chunk=100)],
    ids=["61xx", "6Cxx", "short-chunks"],
)
def test_quirks_over_nfc(nfc_card: NfcPlugged, quirks: Quirks) -> None:
    card, _fe, path = nfc_card
    card.quirks = quirks
    with NfcReader(path) as reader:
        conn = reader.wait_for_card(timeout=10)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        select_ef(ch, 0x000A)
        want = card.image.auth_certificate_der
        buf = b""
        while len(buf) < len(want):
            buf += read(ch, len(buf), 256).data
        conn.close()
    assert buf == want


def test_removal_mid_read_then_next_tap(nfc_card: NfcPlugged) -> None:
    card, fe, path = nfc_card
    card.quirks = Quirks(remove_after_apdus=3)
    with NfcReader(path) as reader:
        conn = reader.wait_for_card(timeout=10)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        with pytest.raises(CardRemoved):
            read_der(ch, 0x000A)
        conn.close()
        fe.insert()  # the next tap
        conn = reader.wait_for_card(timeout=10)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        assert read_der(ch, 0x000A) == card.image.auth_certificate_der
        conn.close()
    assert fe.activations >= 2


class _BuggyCard(VirtualCard):
    def process(self, apdu: bytes) -> bytes:
        if apdu[1:2] == b"\xca":
            raise RuntimeError("simulated bug")
        return super().process(apdu)


def test_a_simulator_bug_answers_6f00_and_the_card_goes_on(
    issue_once: Callable[[], CardImage], caplog: pytest.LogCaptureFixture
) -> None:
    from .conftest import free_udp_port

    port = free_udp_port()
    with (
        NfcUdpFrontEnd(_BuggyCard(issue_once()), "127.0.0.1", port),
        NfcReader(f"udp:127.0.0.1:{port}") as reader,
    ):
        conn = reader.wait_for_card(timeout=10)
        assert conn.transmit(b"\x00\xca\x00\x00\x00") == b"\x6f\x00"
        assert conn.transmit(b"\x00\xa4\x00\x00") == b"\x6a\x86"
        conn.close()
    assert "virtual card failed" in caplog.text
