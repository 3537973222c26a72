"""PcscReaders against the real pcscd: card-presence events with the vpcd front end."""

from __future__ import annotations

import threading
import time

import pytest

from edge.card_sim import VirtualCard, VpcdFrontEnd
from edge.reader import ApduChannel, Cancelled, CommandApdu, NoCard, NoReader
from edge.reader.pcsc import PcscReaders
from tests.components import Pcscd

pytestmark = pytest.mark.pcscd

Plugged = tuple[VirtualCard, VpcdFrontEnd, str]


def test_list_names_both_virtual_readers(pcscd: Pcscd) -> None:
    with PcscReaders() as readers:
        names = readers.list()
    for name in pcscd.readers:
        assert name in names


def test_unknown_reader(pcscd: Pcscd) -> None:
    with PcscReaders() as readers, pytest.raises(NoReader):
        readers.wait_for_card("No Such Reader 99", timeout=0.1)


def test_wait_for_card_times_out_on_empty_reader(pcscd: Pcscd) -> None:
    with PcscReaders() as readers:
        readers.wait_for_removal(pcscd.readers[1], timeout=10)
        with pytest.raises(NoCard):
            readers.wait_for_card(pcscd.readers[1], timeout=0.3)


def test_wait_for_card_is_cancelled_from_another_thread(pcscd: Pcscd) -> None:
    cancel = threading.Event()
    with PcscReaders() as readers:
        readers.wait_for_removal(pcscd.readers[1], timeout=10)
        threading.Timer(0.2, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            readers.wait_for_card(pcscd.readers[1], timeout=30, cancel=cancel)
        assert time.monotonic() - t0 < 10


def test_cancel_method_wakes_the_waiter(pcscd: Pcscd) -> None:
    with PcscReaders() as readers:
        readers.wait_for_removal(pcscd.readers[1], timeout=10)
        threading.Timer(0.2, readers.cancel).start()
        with pytest.raises(Cancelled):
            readers.wait_for_card(pcscd.readers[1], timeout=30)


def test_arrival_and_removal_events(vpcd_card: Plugged) -> None:
    card, fe, name = vpcd_card
    with PcscReaders() as readers:
        fe.remove()
        readers.wait_for_removal(name, timeout=10)
        # The card arrives while we wait.
        threading.Timer(0.2, fe.insert).start()
        conn = readers.wait_for_card(name, timeout=10)
        assert conn.atr == card.image.atr
        r = ApduChannel(conn).send(
            CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("D392F000260100000001"))
        )
        assert r.ok
        conn.close()
        threading.Timer(0.2, fe.remove).start()
        readers.wait_for_removal(name, timeout=10)
        fe.insert()
        readers.wait_for_card(name, timeout=10).close()


def test_any_reader_finds_the_card(vpcd_card: Plugged) -> None:
    card, _fe, name = vpcd_card
    with PcscReaders() as readers:
        conn = readers.wait_for_card(None, timeout=10)
        assert conn.reader == name
        assert conn.atr == card.image.atr
        conn.close()
