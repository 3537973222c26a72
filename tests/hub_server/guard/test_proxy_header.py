"""PROXY protocol v2 headers at the start of a connection (``door.server.parse_proxy_header``):
what HAProxy sends parses to its client, a header cut anywhere asks for more bytes, and
nonsense is a ``ValueError`` (never another exception: the connection is answered 400)."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6, ProxyResultLocal
from proxyprotocol.v2 import ProxyProtocolV2

from door.server import _proxied_client, parse_proxy_header

V2 = ProxyProtocolV2()


def test_an_ipv4_header_names_its_client_and_leaves_the_http_bytes() -> None:
    header = V2.pack(
        ProxyResultIPv4(
            (IPv4Address("203.0.113.7"), 50123),
            (IPv4Address("10.0.0.11"), 8600),
            protocol=socket.SOCK_STREAM,
        )
    )
    data = header + b"GET /v1/health HTTP/1.1\r\n"
    result, end = parse_proxy_header(data)
    assert result is not None
    assert _proxied_client(result) == ("203.0.113.7", 50123)
    assert data[end:] == b"GET /v1/health HTTP/1.1\r\n"
    for cut in range(len(header)):  # arrives in pieces: more bytes are asked for
        assert parse_proxy_header(header[:cut]) == (None, 0)


def test_ipv6_and_local_headers() -> None:
    v6 = V2.pack(
        ProxyResultIPv6(
            (IPv6Address("2001:db8::1"), 443),
            (IPv6Address("2001:db8::2"), 8600),
            protocol=socket.SOCK_STREAM,
        )
    )
    result, _ = parse_proxy_header(v6)
    assert result is not None
    assert _proxied_client(result) == ("2001:db8::1", 443)
    local, end = parse_proxy_header(V2.pack(ProxyResultLocal()))
    assert local is not None
    assert end == 16
    assert _proxied_client(local) is None  # the proxy's own health check


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # plain HTTP
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",  # v1 text: not accepted
        b"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x04abcd",  # v1 version nibble, IPv4 too short
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04abcd",  # IPv4 with a 4-byte address block
    ],
)
def test_nonsense_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_proxy_header(data)


@given(st.binary(min_size=0, max_size=80))
def test_any_bytes_after_the_signature_parse_or_raise_value_error(tail: bytes) -> None:
    data = b"\r\n\r\n\x00\r\nQUIT\n" + tail
    try:
        result, end = parse_proxy_header(data)
    except ValueError:
        return
    if result is None:
        assert end == 0
    else:
        assert 16 <= end <= len(data)
