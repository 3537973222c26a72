"""The door's HTTP server protocol: uvicorn's httptools protocol with limits that hold
without a proxy. The platform (``kyukyu hub serve``) and the hospital's direct endpoint
(docs/disaster.md) run it.

uvicorn itself bounds only the idle keep-alive (``timeout_keep_alive``) and, globally,
concurrent connections and tasks (``limit_concurrency``, answered with 503 after the
request was read). httptools buffers a header of any size, and nothing times out a
connection that sends its request slowly or not at all. This subclass adds, per
connection:

- a byte budget for the request line and headers (``max_header_bytes``: 431 once passed,
  before the parser buffers more), a request-line limit (``max_request_line_bytes``:
  414) and a header count (``max_headers``: 431);
- a header timeout (``header_timeout_seconds`` from the connection, or from a request's
  first byte on a kept-alive connection, to the end of its headers) and a body timeout
  (``body_timeout_seconds`` from the end of the headers to the end of the body): 408 and
  the connection closes;
- connection caps: per client address (``max_connections_per_client``: 429) and per
  process (``max_connections``, lowered to the open-file limit minus 64: 503), answered
  at once and closed, so a flood of half-open connections neither holds a file
  descriptor for long nor starves other clients.

Behind a load balancer (``forwarded_allow_ips``, ``proxy_protocol``): a connection from a
trusted proxy with ``proxy_protocol`` on must begin with a PROXY protocol v2 header
(HAProxy ``send-proxy-v2``; parsed with the ``proxy-protocol`` library); its source address
is the connection's client from then on, for the per-client connection cap (applied as
soon as the header is in, before any HTTP byte is parsed), the rate limits and the app's
``request.client``. A request whose client (the socket's, or the PROXY header's) is a
trusted proxy is counted, at the door and everywhere after it, as the address its
``X-Forwarded-For`` names (the right-most one that is not itself a trusted proxy: uvicorn's
own rule, ``_TrustedHosts``); uvicorn's ``ProxyHeadersMiddleware`` is off, so nothing
reads the header twice. A trusted proxy that vouches for no client at the connection level
(no PROXY header, or a LOCAL one: its health checks) is not held to the per-client cap
(it speaks for many clients), only to the per-process one.

Hand-written on purpose: uvicorn exposes no hook for these, and the protocol class is
the one place that sees bytes before the parser buffers them. ``kyukyu hub serve`` runs
uvicorn with ``hub_server.core.server.uvicorn_options(settings)``; the limits come from the
settings of the app the process serves (``configure``, called by ``create_app``; the
hospital's direct endpoint calls it with ``ServerLimits``).
"""

from __future__ import annotations

import asyncio
import resource
import struct
from dataclasses import dataclass
from typing import Any

import httptools
from proxyprotocol.result import ProxyResult, ProxyResultIPv4, ProxyResultIPv6
from proxyprotocol.v2 import ProxyProtocolV2
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from door.limits import DOOR_CHECKED, RATE_LIMITED, DoorCheck
from errbase import error_json

__all__ = [
    "GuardedHttpToolsProtocol",
    "ServerLimits",
    "configure",
    "connections_by_client",
    "parse_proxy_header",
]

_SPARE_FILES = 64


@dataclass(frozen=True)
class ServerLimits:
    """The protocol's limits (the platform's defaults). The hub passes its ``Settings``
    (the same fields), the hospital's direct endpoint one of these."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    max_request_line_bytes: int = 8 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 4096
    max_connections_per_client: int = 64
    forwarded_allow_ips: str = ""
    proxy_protocol: bool = False


class _Limits:
    def __init__(self, settings: Any) -> None:
        """``settings``: a ``ServerLimits`` or anything with its fields (the hub's)."""
        self.max_header_bytes = settings.max_header_bytes
        self.max_headers = settings.max_headers
        self.max_request_line = settings.max_request_line_bytes
        self.header_timeout = settings.header_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        self.per_client = settings.max_connections_per_client
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        cap = settings.max_connections
        if soft != resource.RLIM_INFINITY:
            cap = min(cap, max(16, soft - _SPARE_FILES))
        self.max_connections = cap
        allowed = settings.forwarded_allow_ips
        self.trusted: _TrustedHosts | None = _TrustedHosts(allowed) if allowed else None
        self.proxy_protocol = settings.proxy_protocol

    def is_proxy(self, address: str) -> bool:
        return self.trusted is not None and address in self.trusted


_V2 = ProxyProtocolV2()
_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_proxy_header(data: bytes) -> tuple[ProxyResult | None, int]:
    """A PROXY protocol v2 header at the start of ``data``: (its result, its length), or
    (None, 0) while more bytes are needed. ``ValueError`` if ``data`` does not start
    with one (a v1 text header included), or it is malformed, or its CRC32c is wrong."""
    if len(data) < 16:
        if not _V2_SIGNATURE.startswith(data[:12]):
            raise ValueError("not a PROXY protocol v2 header")
        return None, 0
    header = _V2.unpack_header(data[:16])  # ProxyProtocolSyntaxError is a ValueError
    end = 16 + header.data_len
    if len(data) < end:
        return None, 0
    try:
        result = _V2.unpack_data(header, data[:16], data[16:end])
    except (struct.error, IndexError, UnicodeDecodeError) as exc:  # an address block too short
        raise ValueError(f"malformed PROXY protocol v2 header ({type(exc).__name__})") from None
    return result, end


def _proxied_client(result: ProxyResult) -> tuple[str, int] | None:
    """The client a PROXY header vouches for; None for LOCAL (the proxy's own health
    checks), UNKNOWN and UNIX sources: the connection stays the proxy's."""
    if isinstance(result, ProxyResultIPv4 | ProxyResultIPv6):
        address, port = result.source
        return str(address), int(port)
    return None


# The defaults until ``configure``: nothing is read from the environment at import.
_limits = _Limits(ServerLimits())
_door: DoorCheck | None = None
#: A refused request over its rate is answered after up to this long (the connection is
#: not read meanwhile, then closed): a flooding client waits instead of spinning.
TARPIT_SECONDS = 1.0
_per_client: dict[str, int] = {}


def configure(settings: Any, *, door: DoorCheck | None = None) -> None:
    """Take the limits of these settings (``max_connections`` capped below the open-file
    limit, which ``kyukyu hub serve`` raises first: ``core.capacity``) and the app's
    rate-limit ``door`` (asked for every request once its headers are in)."""
    global _limits, _door
    _limits = _Limits(settings)
    _door = door


def connections_by_client() -> dict[str, int]:
    """Open connections per client address in this process (for tests and metrics)."""
    return dict(_per_client)


class _Refused(Exception):
    pass


_PHRASES = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def _response(status: int, code: str, message_en: str, message_ja: str) -> bytes:
    body = error_json(code, message_en, message_ja)
    extra = b"retry-after: 1\r\n" if status in (429, 503) else b""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"%sconnection: close\r\n\r\n" % (status, _PHRASES[status], len(body), extra)
    ) + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with header, timeout and connection limits (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lim = _limits
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str, str, str] | None = None
        self._delay = 0.0
        self._done = False
        self._timer: asyncio.TimerHandle | None = None
        self._ip: str | None = None  # the client address the limits count
        self._counted = False  # held to the per-client cap (``_per_client``)
        self._proxy_head: bytes | None = None  # a PROXY header being read

    # -- connection ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ip = self.client[0] if self.client else ""
        self._ip = ip
        if self._lim.proxy_protocol and self._lim.is_proxy(ip):
            self._proxy_head = b""  # the PROXY header first, within the header timeout
            self._arm(self._lim.header_timeout, self._head_timeout)
            return
        self._admit(ip)

    def _read_proxy_header(self, data: bytes) -> None:
        head = (self._proxy_head or b"") + data
        try:
            result, end = parse_proxy_header(head)
        except ValueError:
            self._proxy_head = None
            self._refuse(
                400,
                "bad_proxy_header",
                "a connection from the proxy did not start with a PROXY protocol v2 header",
                "プロキシからの接続にPROXYヘッダーがありません。",
            )
            return
        if result is None:
            self._proxy_head = head
            return
        self._proxy_head = None
        client = _proxied_client(result)
        if client is not None:
            self.client = client
            self._ip = client[0]
        self._admit(self._ip or "")
        if end < len(head) and not self._done:
            self.data_received(head[end:])

    def _admit(self, ip: str) -> None:
        """The connection caps, for the client ``ip`` (a trusted proxy vouching for no
        client is held to the per-process cap only)."""
        if not self._lim.is_proxy(ip):
            self._counted = True
            count = _per_client.get(ip, 0) + 1
            _per_client[ip] = count
        else:
            count = 0
        if count > self._lim.per_client:
            self._refuse(
                429,
                "too_many_connections",
                "too many open connections from this address",
                "この送信元からの接続が多すぎます。",
            )
            return
        if len(self.connections) > self._lim.max_connections:
            self._refuse(
                503, "server_busy", "the server is at its connection limit", "混雑しています。"
            )
            return
        self._arm(self._lim.header_timeout, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._ip is not None and self._counted:
            left = _per_client.get(self._ip, 1) - 1
            if left > 0:
                _per_client[self._ip] = left
            else:
                _per_client.pop(self._ip, None)
            self._ip = None
        super().connection_lost(exc)

    # -- bytes in --------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        if self._proxy_head is not None:
            self._read_proxy_header(data)
            return
        if self._in_head:
            budget = self._lim.max_header_bytes - self._head_bytes
            if len(data) > budget:
                # Feed what the budget allows; if the headers have not ended by then, refuse.
                head, rest = data[:budget], data[budget:]
                self._head_bytes += len(head)
                self._feed(head)
                if self._done or self.transport.is_closing():
                    return
                if self._in_head:
                    self._delay = TARPIT_SECONDS  # within the per-address connection cap
                    self._refuse(
                        431,
                        "headers_too_large",
                        f"request line and headers exceed {self._lim.max_header_bytes} bytes",
                        "ヘッダーが大きすぎます。",
                    )
                    return
                if rest:
                    self.data_received(rest)
                return
            self._head_bytes += len(data)
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)

    # -- parser callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0
        if self._timer is None:  # a kept-alive connection: the first byte starts the clock
            self._arm(self._lim.header_timeout, self._head_timeout)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self._lim.max_request_line:
            self._refusal = (414, "uri_too_long", "the request target is too long", "URL過長")
            self._delay = TARPIT_SECONDS
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._lim.max_headers:
            self._refusal = (
                431,
                "too_many_headers",
                f"more than {self._lim.max_headers} header fields",
                "ヘッダーが多すぎます。",
            )
            self._delay = TARPIT_SECONDS
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        client = self._request_client()
        door = _door
        if door is not None:
            path = httptools.parse_url(self.url).path.decode("latin-1")
            wait = door.wait(path, self.headers, client)
            if wait > 0:
                self._refusal = (429, *RATE_LIMITED)
                self._delay = min(wait, TARPIT_SECONDS)
                raise _Refused
            self.scope[DOOR_CHECKED] = True  # type: ignore[literal-required]
        super().on_headers_complete()
        self._arm(self._lim.body_timeout, self._body_timeout)

    def _request_client(self) -> str:
        """The address this request is counted as: the connection's client, or, when
        that is a trusted proxy, the client its ``X-Forwarded-For`` names (then also the
        scope's ``client``, and ``X-Forwarded-Proto`` its scheme)."""
        ip = self._ip or ""
        trusted = self._lim.trusted
        if trusted is None or ip not in trusted:
            return ip
        forwarded = [v for n, v in self.headers if n == b"x-forwarded-for"]
        if forwarded:
            host, port = trusted.get_trusted_client_address(b", ".join(forwarded).decode("latin-1"))
            if host:
                self.scope["client"] = (host, port)
                ip = host
        for name, value in self.headers:
            if name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip()
                if proto in ("http", "https"):
                    self.scope["scheme"] = proto
        return ip

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # -- timers ------------------------------------------------------------------------
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timeout(self) -> None:
        self._timer = None
        self._refuse(408, "header_timeout", "the request headers came too slowly", "タイムアウト")

    def _body_timeout(self) -> None:
        self._timer = None
        started = self._answering()
        if started:
            self._close()
        else:
            self._refuse(408, "body_timeout", "the request body came too slowly", "タイムアウト")

    # -- answers -----------------------------------------------------------------------
    def _refuse(self, status: int, code: str, message_en: str, message_ja: str) -> None:
        """Answer with the hub's error JSON and close (nothing more is read); after
        ``self._delay`` seconds if set (the tarpit of a client over its rate)."""
        if self._done:
            return
        if self._delay > 0:
            delay, self._delay = self._delay, 0.0
            self._done = True  # read nothing more meanwhile
            self.transport.pause_reading()
            self._disarm()

            def later() -> None:
                self._done = False
                self._refuse(status, code, message_en, message_ja)

            self._timer = self.loop.call_later(delay, later)
            return
        started = self._answering()
        if not started and not self.transport.is_closing():
            self.transport.write(_response(status, code, message_en, message_ja))
        self._close()

    def _answering(self) -> bool:
        """A response is on its way on this connection (writing another would corrupt it);
        a finished one of an earlier request on a kept-alive connection does not count."""
        cycle = self.cycle
        return cycle is not None and cycle.response_started and not cycle.response_complete

    def _close(self) -> None:
        self._done = True
        self._disarm()
        if self.cycle is not None:
            self.cycle.keep_alive = False
        if not self.transport.is_closing():
            self.transport.close()
