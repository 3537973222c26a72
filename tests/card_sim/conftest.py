"""Fixtures of the card simulator suite: one test CA and a small key pool per session."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator

import pytest

from edge.card_sim import CardImage, KeyPool, NfcUdpFrontEnd, TestCA, VirtualCard, VpcdFrontEnd
from edge.reader.pcsc import PcscReaders
from tests.components import Pcscd


@pytest.fixture(scope="session")
def test_ca() -> TestCA:
    """Roots with their own keys; cards draw from a separate pool of 3 keys."""
    ca = TestCA.create(key_factory=KeyPool(4))
    ca.key_factory = KeyPool(3)
    return ca


@pytest.fixture
def issue(test_ca: TestCA) -> Callable[..., CardImage]:
    """``issue(**kw)``: a fresh card image (deterministic holder per test)."""
    rng = random.Random(1234)

    def make(**kw: object) -> CardImage:
        kw.setdefault("rng", rng)
        return test_ca.issue_card(**kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def vpcd_card(
    pcscd: Pcscd, issue: Callable[..., CardImage]
) -> Iterator[tuple[VirtualCard, VpcdFrontEnd, str]]:
    """A fresh virtual card plugged into ``Virtual PCD 00 00`` through the real pcscd."""
    card = VirtualCard(issue())
    fe = VpcdFrontEnd(card, pcscd.host, pcscd.ports[0]).start()
    name = pcscd.readers[0]
    try:
        assert fe.wait_connected(10), "vpcd did not accept the virtual card"
        with PcscReaders() as readers:
            readers.wait_for_card(name, timeout=10).close()  # pcscd has seen it
        yield card, fe, name
    finally:
        fe.stop()
        with PcscReaders() as readers:
            readers.wait_for_removal(name, timeout=10)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nfc_card(issue: Callable[..., CardImage]) -> Iterator[tuple[VirtualCard, NfcUdpFrontEnd, str]]:
    """A fresh virtual card served through nfcpy's udp driver; yields the reader path."""
    card = VirtualCard(issue())
    port = free_udp_port()
    fe = NfcUdpFrontEnd(card, "127.0.0.1", port).start()
    try:
        yield card, fe, f"udp:127.0.0.1:{port}"
    finally:
        fe.stop()


@pytest.fixture(scope="session")
def issue_once(test_ca: TestCA) -> Callable[[], CardImage]:
    """The same card image every call (for property tests that must not issue per example)."""
    image = test_ca.issue_card(rng=random.Random(99))
    return lambda: image
