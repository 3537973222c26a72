"""The device's answer stream on arbitrary bytes: events or ``MalformedEvent``, nothing else.

Whatever the stream holds, every event handed over is whole (its ``id`` is the ``seq``
inside its JSON object) and anything else stops the stream with ``MalformedEvent``.
"""

from __future__ import annotations

import json

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import MalformedEvent
from sync.client import PlatformClient

KEY = Ed25519PrivateKey.generate()
pieces = st.sampled_from(
    ["id: 7", "id: x", "event: answer", "event: ping", "data: ", 'data: {"seq": 7}', "retry: 1"]
)
chunks = st.one_of(pieces, st.text(max_size=20), st.sampled_from(["\n", "\r", "\r\n", "\u2028"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(chunks, max_size=30))
def test_any_stream_gives_whole_events_or_malformed(parts: list[str]) -> None:
    body = "".join(parts).encode("utf-8", "surrogatepass")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})

    client = PlatformClient(
        "https://hub.test", key=KEY, device_id="d1", transport=httpx.MockTransport(handler)
    )
    try:
        for ev in client.device_events(after=0):
            assert isinstance(ev.data, dict)
            assert ev.data["seq"] == ev.seq
            assert json.loads(json.dumps(ev.data)) == ev.data
    except MalformedEvent:
        pass
    finally:
        client.close()
