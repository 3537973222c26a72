"""The SSE parser: round trip of generated events, comments, CRLF, fragments."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync._sse import SseEvent, parse_sse

line_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]),
    max_size=40,
)
events = st.lists(
    st.tuples(
        st.integers(0, 10**12).map(str),
        st.sampled_from(["case", "answer", "message"]),
        st.lists(line_text, min_size=1, max_size=4),
    ),
    max_size=8,
)


def encode(evs: list[tuple[str, str, list[str]]], crlf: bool) -> list[str]:
    out = [": connected", ""]
    for ident, kind, data in evs:
        out += [f"id: {ident}", f"event: {kind}", *(f"data: {d}" for d in data), ""]
        out += [": ping", ""]
    return [line + ("\r\n" if crlf else "") for line in out]


@given(events, st.booleans())
def test_round_trip(evs: list[tuple[str, str, list[str]]], crlf: bool) -> None:
    got = list(parse_sse(encode(evs, crlf)))
    assert got == [SseEvent(i, k, "\n".join(d)) for i, k, d in evs]


@given(st.lists(st.text(max_size=30), max_size=30))
def test_never_crashes(lines: list[str]) -> None:
    for ev in parse_sse(lines):
        assert isinstance(ev.data, str)


def test_incomplete_trailing_event_is_dropped() -> None:
    assert list(parse_sse(["id: 1", "data: x"])) == []
    assert list(parse_sse(["data:x", ""])) == [SseEvent(None, "message", "x")]
