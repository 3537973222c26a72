"""A client closed by another thread is a TransportError, never a RuntimeError in a thread."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import SignedHttp, TransportError


def _http() -> SignedHttp:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    return SignedHttp(
        "http://hub.test", key=Ed25519PrivateKey.generate(), key_id="k1", transport=transport
    )


@pytest.mark.parametrize("call", ["request", "events"])
def test_closed_between_build_and_send(call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    http = _http()
    build = http._build

    def build_then_close(*args: Any, **kwargs: Any) -> httpx.Request:
        request = build(*args, **kwargs)
        http.close()  # what a stopping receiver does from its own thread
        return request

    def attempt() -> None:
        if call == "request":
            http.request("POST", "/v1/cases/c1/ack", body={})
        else:
            next(iter(http.events("/v1/hospitals/me/events")))

    monkeypatch.setattr(http, "_build", build_then_close)
    with pytest.raises(TransportError):
        attempt()


def test_closed_before_is_still_a_transport_error() -> None:
    http = _http()
    http.close()
    with pytest.raises(TransportError):
        http.request("GET", "/v1/hub/key", signed=False)
