"""vpcd front end: plugs a ``VirtualCard`` into pcscd through vsmartcard's vpcd driver.

The card process is the TCP *client*; vpcd (inside pcscd) listens on
127.0.0.1:35963 (reader ``Virtual PCD 00 00``) and 35964 (``Virtual PCD 00 01``).
Frames are a 2-byte big-endian length and a body: a 1-byte control code
(0 power off, 1 power on, 2 reset, 4 get ATR) or a command APDU, answered with
the response APDU. A connected socket is a card in the reader; closing it is
removing the card.

vpcd writes the length and the body as separate segments: without TCP_NODELAY
and a fresh TCP_QUICKACK before every ``recv`` the delayed ACK meets Nagle and
each APDU costs ~48 ms instead of ~0.1 ms.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from edge.reader import CardRemoved

from ._card import VirtualCard

__all__ = ["VPCD_PORTS", "VpcdFrontEnd"]

log = logging.getLogger("edge.card_sim.vpcd")

VPCD_PORTS = (35963, 35964)
_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
# pcscd polls vpcd for card presence about every 0.4 s: a card out for less than
# that would never be seen leaving. Stay out at least this long.
MIN_ABSENT_S = 0.6


class VpcdFrontEnd:
    """Serve ``card`` to vpcd in a background thread.

    ``start()`` connects (card inserted) and keeps reconnecting while the card is
    present; ``remove()`` / ``insert()`` take the card out and put it back;
    ``stop()`` disconnects for good. Removal by the card itself (the
    ``remove_after_apdus`` quirk) also disconnects.
    """

    def __init__(
        self,
        card: VirtualCard,
        host: str = "127.0.0.1",
        port: int = VPCD_PORTS[0],
        *,
        low_latency: bool = True,
    ) -> None:
        self.card = card
        # False only to measure what the socket options save (benchmarks).
        self.low_latency = low_latency
        self.host = host
        self.port = port
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._gone_at = 0.0
        self.apdus = 0
        card.on_presence(self._presence_changed)

    # -- control ---------------------------------------------------------------

    def start(self) -> VpcdFrontEnd:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"vpcd-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._drop()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> VpcdFrontEnd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def insert(self) -> None:
        """Put the card (back) into the virtual reader."""
        self.card.insert()
        self._wake.set()

    def remove(self) -> None:
        """Take the card out: the socket closes and pcscd sees the reader empty."""
        self.card.remove()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """True once vpcd accepted the connection (the card is in the reader)."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _presence_changed(self, present: bool) -> None:
        if present:
            self._wake.set()
        else:
            self._drop()

    def _drop(self) -> None:
        with self._sock_lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- the loop --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.card.present:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            absent_for = time.monotonic() - self._gone_at
            if absent_for < MIN_ABSENT_S:
                self._stop.wait(MIN_ABSENT_S - absent_for)
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                # vpcd not listening (yet): pcscd starting or restarting.
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            sock.settimeout(None)
            if self.low_latency:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._sock_lock:
                self._sock = sock
            if not self.card.present or self._stop.is_set():
                self._close(sock)
                continue
            self._connected.set()
            try:
                self._serve(sock)
            except OSError as exc:
                log.debug("vpcd connection ended: %s", exc)
            finally:
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        self._connected.clear()
        self._gone_at = time.monotonic()
        with self._sock_lock:
            self._sock = None
        with contextlib.suppress(OSError):
            sock.close()

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            if _QUICKACK is not None and self.low_latency:
                # Linux clears QUICKACK after use: re-arm before every recv.
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _serve(self, sock: socket.socket) -> None:
        card = self.card
        while True:
            head = self._recv_exact(sock, 2)
            if head is None:
                return
            size = int.from_bytes(head, "big")
            body = self._recv_exact(sock, size) if size else b""
            if body is None:
                return
            if size == 1:
                code = body[0]
                if code == _GET_ATR:
                    atr = card.atr
                    sock.sendall(len(atr).to_bytes(2, "big") + atr)
                elif code in (_POWER_ON, _RESET):
                    card.power_on()
                # Power off: nothing to answer; login state goes with the next power on.
                continue
            try:
                out = card.process(body)
            except CardRemoved:
                return
            except Exception:
                # A simulator bug must not look like a removed card: answer 6F00.
                log.exception("virtual card failed on an APDU")
                out = b"\x6f\x00"
            self.apdus += 1
            sock.sendall(len(out).to_bytes(2, "big") + out)
