"""nfcpy transport: error mapping, waiting, cancel; only edge/reader/_nfc.py imports nfc."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import nfc.clf
import nfc.tag
import nfc.tag.tt4
import pytest

from edge.card_sim import NfcUdpFrontEnd, VirtualCard
from edge.reader import Cancelled, CardRemoved, NoCard, NoReader, TransportError
from edge.reader._nfc import NfcConnection, NfcReader, atr_for_type_b

from .conftest import free_udp_port

NfcPlugged = tuple[VirtualCard, NfcUdpFrontEnd, str]
EDGE_READER = Path(__file__).resolve().parents[2] / "edge" / "reader"


class _RaisingTag:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def transceive(self, _data: Any, timeout: float | None = None) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (nfc.clf.TimeoutError("t"), CardRemoved),
        (nfc.clf.BrokenLinkError("RFOFF"), CardRemoved),
        (nfc.clf.TransmissionError("crc"), CardRemoved),
        (nfc.tag.tt4.Type4TagCommandError(nfc.tag.TIMEOUT_ERROR), CardRemoved),
        (nfc.tag.tt4.Type4TagCommandError(nfc.tag.RECEIVE_ERROR), CardRemoved),
        (nfc.tag.tt4.Type4TagCommandError(nfc.tag.PROTOCOL_ERROR), TransportError),
        (nfc.clf.ProtocolError("p"), CardRemoved.__mro__[1] if False else TransportError),
        (OSError(19, "No such device"), TransportError),
    ],
)
def test_nfcpy_errors_are_mapped(exc: BaseException, cls: type[Exception]) -> None:
    conn = NfcConnection(NfcReader.__new__(NfcReader), _RaisingTag(exc), b"\x50" + bytes(11))
    with pytest.raises(cls) as err:
        conn.transmit(b"\x00\xa4\x04\x0c")
    assert type(err.value) is cls


def test_short_answer_is_card_removed() -> None:
    class Tag:
        def transceive(self, _d: Any, timeout: float | None = None) -> Any:
            return bytearray(b"\x90")

    conn = NfcConnection(NfcReader.__new__(NfcReader), Tag(), b"\x50" + bytes(11))
    with pytest.raises(CardRemoved):
        conn.transmit(b"\x00\xb0\x00\x00\x00")


def test_atr_for_type_b() -> None:
    atr = atr_for_type_b(bytes.fromhex("50 4A504B49 01020304 0081B1"))
    assert atr[:4] == bytes.fromhex("3B888001")
    assert atr[4:11] == bytes.fromhex("01020304 0081B1")
    tck = 0
    for b in atr[1:]:
        tck ^= b
    assert tck == 0


def test_no_reader_at_bogus_usb_path() -> None:
    with NfcReader("usb:ffff:ffff") as reader, pytest.raises(NoReader):
        reader.wait_for_card(timeout=0.1)


def test_no_card_times_out() -> None:
    with NfcReader(f"udp:127.0.0.1:{free_udp_port()}") as reader, pytest.raises(NoCard):
        reader.wait_for_card(timeout=0.2)


def test_cancel_wait_for_card() -> None:
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    t0 = time.monotonic()
    with NfcReader(f"udp:127.0.0.1:{free_udp_port()}") as reader, pytest.raises(Cancelled):
        reader.wait_for_card(timeout=30, cancel=cancel)
    assert time.monotonic() - t0 < 10


def test_wait_for_removal_and_reset(nfc_card: NfcPlugged) -> None:
    card, fe, path = nfc_card
    with NfcReader(path) as reader:
        conn = reader.wait_for_card(timeout=10)
        assert conn.reset() == conn.atr
        assert conn.transmit(b"\x00\xa4\x00\x00") == b"\x6a\x86"  # cold card after the reset
        conn.close()
        fe.remove()
        reader.wait_for_removal(timeout=10)
        fe.insert()
        reader.wait_for_card(timeout=10).close()
    assert card.present


def test_only_the_nfc_module_imports_nfcpy() -> None:
    pattern = re.compile(r"^\s*(import nfc\b|from nfc\b)", re.MULTILINE)
    importers = sorted(p.name for p in EDGE_READER.glob("*.py") if pattern.search(p.read_text()))
    assert importers == ["_nfc.py"]


def test_no_pin_or_card_data_in_debug_logs(
    nfc_card: NfcPlugged, caplog: pytest.LogCaptureFixture
) -> None:
    from edge.reader import ApduChannel, CommandApdu

    card, _fe, path = nfc_card
    caplog.set_level(logging.DEBUG)
    # nfcpy's frame dumps stay off even with the root logger at DEBUG.
    assert logging.getLogger("nfc.tag.tt4").getEffectiveLevel() >= logging.INFO
    assert logging.getLogger("nfc.clf").getEffectiveLevel() >= logging.INFO
    with NfcReader(path) as reader:
        conn = reader.wait_for_card(timeout=10)
        ch = ApduChannel(conn)
        ch.send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("D3921000310001010408")))
        ch.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x11"))
        ch.send(CommandApdu(0x00, 0x20, 0x00, 0x80, card.image.text_pin.encode()))
        ch.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x02"))
        data = ch.send(CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256)).data
        conn.close()
    assert card.image.holder.name.encode() in data
    text = caplog.text
    assert card.image.text_pin.encode().hex() not in text.lower()
    assert card.image.holder.name.encode().hex() not in text.lower()
    assert card.image.holder.name not in text
