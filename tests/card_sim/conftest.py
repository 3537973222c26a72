"""Fixtures of the card simulator suite: one test CA and a small key pool per session."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from edge.card_sim import CardImage, KeyPool, TestCA, VirtualCard, VpcdFrontEnd
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
