"""The simulator through pyscard -> real pcscd -> vpcd, quirks included."""

from __future__ import annotations

import pytest

from edge.card_sim import Quirks, VirtualCard, VpcdFrontEnd
from edge.reader import ApduChannel, CardRemoved
from edge.reader.pcsc import PcscConnection, PcscReaders

from .helpers import read, read_der, select_ap, select_ef, verify

pytestmark = pytest.mark.pcscd

Plugged = tuple[VirtualCard, VpcdFrontEnd, str]


def _connect(readers: PcscReaders, name: str) -> PcscConnection:
    return readers.wait_for_card(name, timeout=10)


def test_read_auth_certificate_through_pcscd(vpcd_card: Plugged) -> None:
    card, fe, name = vpcd_card
    with PcscReaders() as readers:
        assert name in readers.list()
        conn = _connect(readers, name)
        assert conn.transport == "pcsc"
        assert conn.atr == card.image.atr
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        der = read_der(ch, 0x000A)
        conn.close()
    assert der == card.image.auth_certificate_der
    # select AP, select EF, header, then one READ BINARY per 256 bytes.
    assert ch.stats.apdus == 3 + -(-(len(der) - 4) // 256)
    assert fe.apdus >= ch.stats.apdus


@pytest.mark.parametrize(
    "quirks",
    [
        Quirks(read_chunk=64),
        Quirks(chain_61xx=100),
        Quirks(le_correction_at_eof=True),
        Quirks(link_kbps=424, apdu_delay_s=0.001),
    ],
    ids=["short-chunks", "61xx", "6Cxx-at-eof", "slow-link"],
)
def test_quirks_through_pcscd(vpcd_card: Plugged, quirks: Quirks) -> None:
    card, _fe, name = vpcd_card
    card.quirks = quirks
    with PcscReaders() as readers:
        conn = _connect(readers, name)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        select_ef(ch, 0x000A)
        size = len(card.image.auth_certificate_der)
        buf = b""
        # A reader that knows nothing of the quirk: always asks for 256 bytes.
        while len(buf) < size:
            buf += read(ch, len(buf), 256).data
        conn.close()
    assert buf == card.image.auth_certificate_der
    n_reads = -(-size // 256)
    if quirks.read_chunk:
        assert ch.stats.apdus == 2 + -(-size // 64)
    elif quirks.chain_61xx:
        assert ch.stats.apdus > 2 + n_reads  # GET RESPONSE round trips
    elif quirks.le_correction_at_eof:
        assert ch.stats.apdus == 2 + n_reads + 1  # the last read is re-sent with Le = xx
    else:
        assert ch.stats.apdus == 2 + n_reads


def test_removal_mid_read_then_next_tap(vpcd_card: Plugged) -> None:
    card, fe, name = vpcd_card
    card.quirks = Quirks(remove_after_apdus=4)
    with PcscReaders() as readers:
        conn = _connect(readers, name)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        with pytest.raises(CardRemoved):
            read_der(ch, 0x000A)
        conn.close()
        readers.wait_for_removal(name, timeout=10)
        fe.insert()  # the next tap
        conn = _connect(readers, name)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        assert read_der(ch, 0x000A) == card.image.auth_certificate_der
        conn.close()


def test_reset_logs_out(vpcd_card: Plugged) -> None:
    card, _fe, name = vpcd_card
    with PcscReaders() as readers:
        conn = _connect(readers, name)
        ch = ApduChannel(conn)
        select_ap(ch, "jpki")
        select_ef(ch, 0x0018)
        assert verify(ch, card.image.pin).sw == 0x9000
        conn.reset()
        # After a reset nothing is selected: SELECT MF answers 6A86 like a cold card.
        assert select_ef(ch, 0x0018, check=False).sw == 0x6A82
        conn.close()
