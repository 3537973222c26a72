"""nfcpy ``udp`` front end: the virtual card as an ISO-DEP Type 4B target.

A reader process opens ``udp:HOST:PORT`` with nfcpy and senses ``106B``; this
front end listens on the same path (``listen_ttb``), answers ``SENSB_REQ`` and
``ATTRIB`` and then runs the PICC side of ISO 14443-4 block transmission:
I-blocks with chaining both ways, R(ACK)/R(NAK), S(DESELECT). Removal makes
the card fall silent and tells the reader ``RFOFF`` so it notices at once
instead of after the frame waiting time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from edge.reader import CardRemoved

from ._card import VirtualCard

__all__ = ["SENSB_RES_APP", "NfcUdpFrontEnd"]

log = logging.getLogger("edge.card_sim.nfc")

# SENSB_RES after the PUPI: application data (4), protocol info (3):
# bit rates 106 only; FSCI 8 (256-byte frames) + ISO 14443-4; FWI 11 (~0.6 s), CID supported.
SENSB_RES_APP = bytes.fromhex("000000000081B1")
_FSD = 256  # the reader's frame size (ATTRIB param 2 = 8 with nfcpy's udp driver)


class NfcUdpFrontEnd:
    """Serve ``card`` through nfcpy's udp driver on ``host:port`` in a background thread."""

    def __init__(self, card: VirtualCard, host: str = "127.0.0.1", port: int = 54321) -> None:
        import nfc
        import nfc.clf

        self._nfc = nfc
        self.card = card
        self.host = host
        self.port = port
        self.pupi = bytes.fromhex("4A504B49")  # "JPKI"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clf: Any = None
        self.apdus = 0
        self.activations = 0
        self._ready = threading.Event()

    @property
    def sensb_res(self) -> bytes:
        return b"\x50" + self.pupi + SENSB_RES_APP

    def start(self) -> NfcUdpFrontEnd:
        if self._thread is None:
            clf = self._nfc.ContactlessFrontend()
            if not clf.open(f"udp:{self.host}:{self.port}"):
                raise OSError(f"cannot open nfcpy udp:{self.host}:{self.port}")
            self._clf = clf
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"nfc-udp-{self.port}", daemon=True
            )
            self._thread.start()
            self.wait_listening(2.0)
        return self

    def wait_listening(self, timeout: float = 2.0) -> bool:
        """True once the udp socket is bound (a reader's SENSB_REQ is no longer lost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock = getattr(getattr(self._clf, "device", None), "socket", None)
            with contextlib.suppress(OSError, AttributeError):
                if sock is not None and sock.getsockname()[1] == self.port:
                    return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._clf is not None:
            with contextlib.suppress(Exception):
                self._clf.close()
            self._clf = None

    def __enter__(self) -> NfcUdpFrontEnd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def insert(self) -> None:
        self.card.insert()

    def remove(self) -> None:
        self.card.remove()

    # -- the PICC side ---------------------------------------------------------

    def _run(self) -> None:
        clf = self._clf
        nfc = self._nfc
        target = nfc.clf.LocalTarget("106B")
        target.sensb_res = bytearray(self.sensb_res)
        while not self._stop.is_set():
            if not self.card.present:
                self._stop.wait(0.05)
                continue
            try:
                activated = clf.listen(target, 0.25)
            except nfc.clf.Error as exc:
                log.debug("listen: %s", exc)
                continue
            if activated is None or not activated.tt4_cmd:
                continue
            attrib = bytes(activated.tt4_cmd)
            if attrib[:1] != b"\x1d" or attrib[1:5] != self.pupi:
                continue
            self.activations += 1
            try:
                self._session(clf)
            except nfc.clf.Error as exc:
                log.debug("session ended: %s", exc.__class__.__name__)

    def _session(self, clf: Any) -> None:
        """One activation: ATTRIB answered, then blocks until DESELECT, RFOFF or removal."""
        nfc = self._nfc
        self.card.power_on()
        answer: bytes | None = b"\x00"  # ATTRIB response: MBLI 0, CID 0
        last: bytes | None = None
        chained = b""
        pending: list[bytes] = []  # response chunks still to send
        while not self._stop.is_set():
            try:
                frame = clf.exchange(bytearray(answer) if answer is not None else None, 0.2)
            except nfc.clf.TimeoutError:
                answer = None
                if not self.card.present:
                    return
                continue
            answer = None
            if not frame:
                continue
            frame = bytes(frame)
            pcb = frame[0]
            bn = pcb & 0x01
            if pcb & 0xE2 == 0x02:  # I-block
                if pcb & 0x10:  # chained command: acknowledge, wait for the rest
                    chained += frame[1:]
                    answer = bytes((0xA2 | bn,))
                    continue
                apdu, chained = chained + frame[1:], b""
                try:
                    resp = self.card.process(apdu)
                except CardRemoved:
                    self._rf_gone(clf)
                    return
                except Exception:
                    # A simulator bug must not look like a removed card: answer 6F00.
                    log.exception("virtual card failed on an APDU")
                    resp = b"\x6f\x00"
                self.apdus += 1
                size = _FSD - 3
                pending = [resp[i : i + size] for i in range(0, len(resp), size)] or [b""]
                answer = last = self._next_block(pending, bn)
            elif pcb & 0xF6 == 0xA2:  # R(ACK): send the next chained piece
                if pending:
                    answer = last = self._next_block(pending, bn)
                else:
                    answer = bytes((0xA2 | bn,))
            elif pcb & 0xF6 == 0xB2:  # R(NAK): retransmit, or presence check
                retransmit = last is not None and last[0] & 0x01 == bn
                answer = last if retransmit else bytes((0xA2 | bn,))
            elif pcb & 0xF7 == 0xC2:  # S(DESELECT)
                with contextlib.suppress(nfc.clf.Error):
                    clf.exchange(bytearray(frame[:1]), 0)
                return
            elif frame[:1] == b"\x05":  # SENSB_REQ in the middle: a new activation
                return

    @staticmethod
    def _next_block(pending: list[bytes], bn: int) -> bytes:
        chunk = pending.pop(0)
        more = 0x10 if pending else 0x00
        return bytes((0x02 | more | bn,)) + chunk

    def _rf_gone(self, clf: Any) -> None:
        """The card left: tell the reader (nfcpy's udp driver reads ``RFOFF`` as a broken link)."""
        dev = clf.device
        target = getattr(clf, "target", None)
        addr = getattr(target, "_addr", None)
        if dev is not None and dev.socket is not None and addr is not None:
            with contextlib.suppress(OSError):
                dev.socket.sendto(b"RFOFF", addr)
        with contextlib.suppress(Exception):
            dev.mute()
