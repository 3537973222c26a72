"""The one "wait for a card" protocol: PC/SC and nfcpy readers both satisfy it, and the
flow reads a virtual card through the real pcscd (vpcd) with it."""

from __future__ import annotations

import threading
from pathlib import Path

from edge.card_sim import VirtualCard, VpcdFrontEnd
from edge.flow import Consent, Stage
from edge.reader import CardWaiter
from edge.reader.nfc import NfcReader
from edge.reader.pcsc import PcscReaders
from tests.components import Pcscd
from tests.edge._world import World, make_flow, wait_until


def test_both_readers_are_card_waiters(pcscd: Pcscd) -> None:
    with PcscReaders(pcscd.readers[0]) as readers:
        assert isinstance(readers, CardWaiter)
        assert readers.reader == pcscd.readers[0]
    nfc = NfcReader("udp:127.0.0.1:1")
    assert isinstance(nfc, CardWaiter)


def test_flow_reads_through_pcscd(pcscd: Pcscd, world: World, tmp_path: Path) -> None:
    front = VpcdFrontEnd(VirtualCard(world.patient()), port=pcscd.ports[0])
    front.start()
    readers = PcscReaders(pcscd.readers[0])
    flow = make_flow(world, tmp_path, cards=readers)
    try:
        assert flow.wait_for_card(timeout=20)
        v = flow.view()
        assert v.stage is Stage.CONSENT, v.notice
        assert v.reader_ok is True
        flow.choose_consent(Consent.UNCONSCIOUS)
        assert flow.view().summary_status == "found"
        flow.finish()
        # The card still lies on the reader: that is no new tap.
        assert not flow.wait_for_card(timeout=0.8)
        assert flow.view().stage is Stage.STANDBY
        got: list[bool] = []
        waiter = threading.Thread(target=lambda: got.append(flow.wait_for_card(timeout=20)))
        waiter.start()
        front.remove()  # handed back ...
        # The flow has seen the reader empty (whenever its thread got to look), so the
        # card put back is a new tap: a condition, not a guess at how long that takes.
        wait_until(lambda: not flow._await_removal, 20, "the flow to see the card leave")
        front.insert()  # ... and tapped again
        waiter.join(25)
        assert got == [True]
        assert flow.view().stage is Stage.CONSENT
    finally:
        flow.close()
        readers.close()
        front.stop()


def test_removal_with_no_reader_known_waits_for_every_reader(pcscd: Pcscd, world: World) -> None:
    """A new process (a kiosk session) knows no last reader: it waits until no reader holds
    a card, not for the first empty one."""
    import pytest

    from edge.reader import NoCard

    front = VpcdFrontEnd(VirtualCard(world.patient()), port=pcscd.ports[1])
    front.start()
    try:
        with PcscReaders() as readers:
            wait_until(lambda: readers._with_card() == pcscd.readers[1], 20, "the card seen")
            with pytest.raises(NoCard):
                readers.wait_for_removal(timeout=0.5)  # reader 0 is empty: still waits
            front.stop()
            readers.wait_for_removal(timeout=30)
            assert readers._with_card() is None
    finally:
        front.stop()
