"""The hub's event writer: whatever the data, one event is exactly three lines for any
line splitter (WHATWG CR/LF, ``str.splitlines``, JavaScript line terminators)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from hub_server.core.events import KEEPALIVE, PendingEvent, format_sse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), json_values, max_size=6), st.integers(1, 2**62))
def test_an_event_is_three_lines_whatever_its_data(data: dict[str, object], seq: int) -> None:
    out = format_sse(PendingEvent("hospital:h", seq, "case", data)).decode()
    assert out.endswith("\n\n")
    lines = out[:-2].splitlines()  # the widest splitter there is
    assert lines == out[:-2].split("\n")
    assert len(lines) == 3
    assert lines[0] == f"id: {seq}"
    assert lines[1] == "event: case"
    assert lines[2].startswith("data: ")
    for c in "\x85\u2028\u2029":
        assert c not in out
    assert json.loads(lines[2][len("data: ") :]) == dict(data, seq=seq)


def test_keepalive_is_an_event_without_data() -> None:
    assert KEEPALIVE == "event: ping\ndata:\n\n"


@given(st.dictionaries(st.text(), json_values, min_size=1, max_size=6), st.integers(1, 2**62))
def test_an_event_from_another_process_is_written_from_its_notification_text(
    data: dict[str, object], seq: int
) -> None:
    """A notification's data (``parse_notification``) is written as the notification
    spelled it (ASCII-escaped JSON, not encoded again): still three lines, the same data."""
    from hub_server.core.events import notification_payload, parse_notification

    payload = notification_payload([PendingEvent("hospital:h", seq, "case", data)], "o")
    origin, [event] = parse_notification(payload)
    assert origin == "o"
    out = format_sse(event).decode()
    lines = out[:-2].splitlines()
    assert len(lines) == 3
    body = lines[2].removeprefix("data: ")
    assert json.loads(body) == {**data, "seq": seq}
    if "seq" not in data:  # then the notification's own text is what is written
        assert body.isascii()
        assert body[:-1].removesuffix(f',"seq":{seq}') == payload[payload.index(',"d":') + 5 : -2]


def test_the_shared_text_is_the_text_of_that_very_dict() -> None:
    """The recipients of a case share one encoded text; a dict that merely looks alike, or
    that came after the cache was cleared, gets its own text, never a neighbour's."""
    from hub_server.core.events.sse import SharedText, sse_json

    cache = SharedText(limit=2)
    first = {"type": "case", "n": 1}
    assert cache.json(first) == sse_json(first).encode()
    assert cache.get(first) == sse_json(first).encode()
    assert cache.get({"type": "case", "n": 1}) is None  # equal, not the same object
    dicts = [{"n": i} for i in range(5)]  # more than the cache holds: it is cleared
    for d in dicts:
        assert cache.json(d) == sse_json(d).encode()
    assert all(cache.get(d) in (None, sse_json(d).encode()) for d in [first, *dicts])
    shared = {"envelope": "QUJD", "fire_department": "東京"}
    events = [PendingEvent(f"hospital:{i}", i + 1, "case", shared) for i in range(3)]
    texts = [format_sse(ev).decode() for ev in events]
    assert [json.loads(t.split("data: ", 1)[1])["seq"] for t in texts] == [1, 2, 3]
