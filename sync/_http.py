"""Signed HTTP to the platform: one request path, one error mapping, one SSE reader.

Every request is signed with ``sync.signing`` (method, path with query, time,
nonce, SHA-256 of the body). Lower-layer exceptions (httpx) are mapped to the
``sync`` tree in ``map_errors`` only; response bodies are never logged.

Event streams are read with ``httpx-sse`` (WHATWG event-stream parsing: lines end
at CR, LF or CRLF only, never at U+2028 and the other ``str.splitlines`` breaks).
``stream_event`` is the one check of a platform event before anything acts on it:
its ``id`` must be a number and its data a JSON object carrying the same number
as ``seq`` (the hub writes both from the same row, in one line); anything else is
a ``MalformedEvent``, reported and retried, never skipped.

httpx and httpx-sse are imported when the first request is made, not with this module,
and ``SignedHttp`` builds its httpx client then: a device shows its first screen
without paying for them (docs/edge-ui.md, cold start). ``DEFAULT_TIMEOUT``,
``STREAM_TIMEOUT`` and ``ServerSentEvent`` are made on first use (``__getattr__``).
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync._errors import (
    AuthError,
    Conflict,
    HttpStatusError,
    MalformedEvent,
    NotFound,
    PlatformError,
    RateLimited,
    ResponseError,
    ServerError,
    Timeout,
    TransportError,
)
from sync.signing import sign_request

if TYPE_CHECKING:
    import httpx
    from httpx_sse import ServerSentEvent

    DEFAULT_TIMEOUT: httpx.Timeout
    STREAM_TIMEOUT: httpx.Timeout

__all__ = [
    "DEFAULT_TIMEOUT",
    "STREAM_TIMEOUT",
    "ServerSentEvent",
    "SignedHttp",
    "StreamEvent",
    "error_for_response",
    "map_errors",
    "parse_retry_after",
    "pinned_tls_context",
    "stream_event",
]

log = logging.getLogger("sync.http")

# ``DEFAULT_TIMEOUT`` / ``STREAM_TIMEOUT`` (httpx.Timeout, built on first use): streams
# stay open; the hub sends keep-alive comments, so a long read timeout still notices a
# dead connection.
_TIMEOUTS: dict[str, dict[str, float]] = {
    "DEFAULT_TIMEOUT": {"timeout": 10.0, "connect": 5.0},
    "STREAM_TIMEOUT": {"timeout": 10.0, "connect": 5.0, "read": 60.0},
}


def _timeout(name: str) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(**_TIMEOUTS[name])


def __getattr__(name: str) -> Any:
    if name in _TIMEOUTS:
        value: Any = _timeout(name)
    elif name == "ServerSentEvent":
        from httpx_sse import ServerSentEvent as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def pinned_tls_context(ca_file: str | Path) -> ssl.SSLContext:
    """A TLS context that trusts only the platform's CA (not the system store)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_response(response: httpx.Response) -> HttpStatusError:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    detail: str | None = None
    import httpx

    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        body = None
    # The hub's errors carry a stable code ({"error": {"code": ...}}); nothing else is
    # kept, so no echo of a request (which may hold personal data) reaches a log.
    if isinstance(body, Mapping):
        inner = body.get("error", body.get("detail", body))
        code = inner.get("code") if isinstance(inner, Mapping) else None
        detail = code if isinstance(code, str) else None
    cls: type[HttpStatusError]
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = HttpStatusError
    return cls(status, detail, retry_after=retry_after, hub_code=detail)


@contextmanager
def map_errors() -> Iterator[None]:
    """The one place where httpx exceptions become ``sync`` errors."""
    import httpx

    try:
        yield
    except PlatformError:
        raise
    except httpx.TimeoutException as exc:
        raise Timeout(type(exc).__name__) from exc
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise TransportError(type(exc).__name__) from exc
    except ssl.SSLError as exc:
        raise TransportError("tls") from exc
    except OSError as exc:
        raise TransportError(type(exc).__name__) from exc


#: Event types the hub sends that carry no numbered data.
KEEPALIVE = "ping"
REVOKED = "revoked"
_MAX_SEQ_DIGITS = 19


@dataclass(frozen=True)
class StreamEvent:
    """A platform event whose number was checked against its data (``stream_event``)."""

    seq: int
    kind: str
    data: dict[str, Any]


def stream_event(sse: ServerSentEvent) -> StreamEvent:
    """Check a numbered platform event; raise ``MalformedEvent`` unless it is whole.

    Whole means: ``id`` is a decimal number, ``data`` parses as one JSON object, and
    that object's ``seq`` is the same number. A line break smuggled into a field
    could only ever forge an ``id`` with data that does not carry it.
    """
    ident = sse.id
    if not (ident.isascii() and ident.isdigit()) or len(ident) > _MAX_SEQ_DIGITS:
        raise MalformedEvent(f"{sse.event} event without a valid id")
    try:
        data = json.loads(sse.data)
    except ValueError:
        raise MalformedEvent(f"{sse.event} event {ident}: data is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEvent(f"{sse.event} event {ident}: data is not an object")
    seq = data.get("seq")
    if type(seq) is not int or seq != int(ident):
        raise MalformedEvent(f"{sse.event} event {ident}: id and data disagree")
    return StreamEvent(seq, sse.event, data)


class SignedHttp:
    """An httpx client whose every request is signed with the caller's Ed25519 key."""

    def __init__(
        self,
        base_url: str,
        *,
        key: Ed25519PrivateKey,
        key_id: str | None,
        ca_file: str | Path | None = None,
        verify: ssl.SSLContext | bool | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        """``timeout`` None is ``DEFAULT_TIMEOUT``. The pinned CA file is read here (a
        bad one fails at once); the httpx client is built by the first request."""
        self._key = key
        self.key_id = key_id
        if verify is None:
            verify = pinned_tls_context(ca_file) if ca_file is not None else True
        self._options: dict[str, Any] = {
            "base_url": base_url,
            "transport": transport,
            "verify": verify,
            "timeout": timeout,
            "headers": {"User-Agent": "kyukyu-sync/1"},
        }
        self._client: httpx.Client | None = None
        self._closed = False
        self._client_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """The httpx client, built on first use (importing httpx then)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    import httpx

                    options = dict(self._options)
                    if options["timeout"] is None:
                        options["timeout"] = _timeout("DEFAULT_TIMEOUT")
                    self._client = httpx.Client(**options)
                    if self._closed:
                        self._client.close()
                client = self._client
        return client

    def close(self) -> None:
        with self._client_lock:
            self._closed = True
            client = self._client
        if client is not None:
            client.close()

    @property
    def closed(self) -> bool:
        return self._closed or (self._client is not None and self._client.is_closed)

    def __enter__(self) -> SignedHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int | float] | None = None,
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        if self.closed:
            # A closed client is a transport that is gone, not a programming error.
            raise TransportError("client closed")
        from httpx import USE_CLIENT_DEFAULT

        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method,
            path,
            params=params,
            content=content,
            headers=all_headers,
            timeout=timeout if timeout is not None else USE_CLIENT_DEFAULT,
        )
        if signed:
            if self.key_id is None:
                raise PlatformError("not enrolled: no key id to sign with")
            path_q = request.url.raw_path.decode("ascii")
            request.headers.update(sign_request(self._key, self.key_id, method, path_q, content))
        return request

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except RuntimeError:
            if self.closed:
                # Closed by another thread between building and sending (a receiver
                # stopping): the transport is gone, as when it was closed before.
                raise TransportError("client closed") from None
            raise

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int | float] | None = None,
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
        ok: tuple[int, ...] = (200, 201),
    ) -> httpx.Response:
        """Send one signed request; raise a ``PlatformError`` unless the status is in ``ok``."""
        with map_errors():
            request = self._build(
                method, path, body=body, params=params, headers=headers, signed=signed
            )
            response = self._send(request)
        log.debug("%s %s -> %s", method, request.url.path, response.status_code)
        if response.status_code not in ok:
            raise error_for_response(response)
        return response

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ResponseError("body is not JSON") from exc

    def events(
        self,
        path: str,
        *,
        after: int = 0,
        stop: threading.Event | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> Iterator[ServerSentEvent]:
        """Stream SSE events after event number ``after`` (``httpx-sse``).

        Ends when the server closes the stream or, at the next event (the hub's
        keep-alive pings included), once ``stop`` is set. ``on_keepalive`` is called
        on each ping (idle-time work); pings are not yielded. A ``revoked`` event is
        yielded. Nothing is checked here: see ``stream_event``.
        """
        from httpx_sse import EventSource, SSEError

        with map_errors():
            request = self._build(
                "GET", path, params={"after": after}, timeout=_timeout("STREAM_TIMEOUT")
            )
            request.headers["Accept"] = "text/event-stream"
            response = self._send(request, stream=True)
            try:
                if response.status_code != 200:
                    response.read()
                    raise error_for_response(response)
                for sse in EventSource(response).iter_sse():
                    if stop is not None and stop.is_set():
                        return
                    # httpx-sse also dispatches a data-less block (a comment, ``retry:``).
                    if sse.event == KEEPALIVE or (sse.event == "message" and not sse.data):
                        if on_keepalive is not None:
                            on_keepalive()
                        continue
                    yield sse
            except SSEError as exc:
                raise MalformedEvent(str(exc)) from None
            finally:
                response.close()
