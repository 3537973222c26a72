"""The UI renders the flow's state: it imports no network, sync, hub or card code."""

from __future__ import annotations

from tests.test_layering import _violations

FORBIDDEN = (
    "smartcard",
    "nfc",
    "httpx",
    "edge.reader",
    "edge.jpki",
    "edge.card_sim",
    "sync",
    "hub_server",
    "socket",
)


def test_edge_ui_imports_only_the_flow() -> None:
    assert _violations("edge/ui", FORBIDDEN) == []


def test_the_flow_imports_no_ui() -> None:
    assert _violations("edge/flow", ("textual", "edge.ui", "kyukyu")) == []
