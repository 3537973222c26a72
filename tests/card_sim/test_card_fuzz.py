"""Property test: any bytes sent to the virtual card get a response APDU, never an exception."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.card_sim import CardImage, Quirks, VirtualCard

_PREFIXES = [
    bytes.fromhex("00A4040C0AD392F000260100000001"),
    bytes.fromhex("00A4040C0AD3921000310001010408"),
    bytes.fromhex("00A4020C02000A"),
    bytes.fromhex("00A4020C020018"),
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from(_PREFIXES) | st.binary(max_size=270), max_size=12),
    st.sampled_from([Quirks(), Quirks(chain_61xx=50), Quirks(le_correction_at_eof=True)]),
)
def test_card_always_answers(
    issue_once: Callable[[], CardImage], apdus: list[bytes], quirks: Quirks
) -> None:
    card = VirtualCard(issue_once(), quirks)
    card.power_on()
    for apdu in apdus:
        out = card.process(apdu)
        assert len(out) >= 2
        assert len(out) <= 258
