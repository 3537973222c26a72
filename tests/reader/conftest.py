"""Reader-layer fixtures: the virtual card (from the card_sim suite) as the card under test."""

from __future__ import annotations

from tests.card_sim.conftest import free_udp_port, issue, nfc_card, test_ca, vpcd_card

__all__ = ["free_udp_port", "issue", "nfc_card", "test_ca", "vpcd_card"]
