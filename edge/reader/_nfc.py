"""nfcpy transport: RC-S380-class readers (and nfcpy's ``udp`` driver) as a ``Connection``.

The My Number card is an ISO-DEP Type 4B target. nfcpy senses it
(``SENSB_REQ``), activates it (``ATTRIB``) and exchanges short APDUs through
``Type4BTag.transceive``. Every nfcpy quirk stays in this file: its exceptions
become reader errors here (a broken link or a timeout is the card leaving the
field), and this is the only module of ``edge.reader`` that imports ``nfc``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ._errors import Cancelled, CardRemoved, NoCard, NoReader, TransportError

__all__ = ["NfcConnection", "NfcReader", "atr_for_type_b"]

try:  # nfcpy is an optional extra ([nfc]).
    import nfc
    import nfc.clf
    import nfc.tag
    import nfc.tag.tt4
except ImportError as exc:  # pragma: no cover - exercised only without nfcpy
    nfc = None
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None
    # nfcpy logs every frame in hex at DEBUG (nfc.clf, nfc.tag.tt4, the drivers):
    # PIN bodies and attribute data would reach the log. nfcpy sets INFO itself;
    # make sure it stays so even if something lowered it before we were imported.
    logging.getLogger("nfc").setLevel(logging.INFO)

# One sense round: the udp driver waits up to 1 s for SENSB_RES; USB readers return at once.
_SENSE_INTERVAL_S = 0.05
_FIELD_OFF_S = 0.02


def atr_for_type_b(sensb_res: bytes) -> bytes:
    """The ATR a PC/SC reader synthesises for an ISO 14443-4 Type B card (PC/SC part 3).

    ``3B 88 80 01`` + application data (4) + protocol info (3) + MBLI/CID byte + TCK.
    Lets callers treat nfcpy and PC/SC connections alike.
    """
    body = b"\x88\x80\x01" + bytes(sensb_res[5:9]) + bytes(sensb_res[9:12]) + b"\x00"
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


def _require() -> None:
    if nfc is None:
        raise TransportError(f"nfcpy is not installed ({_IMPORT_ERROR})")


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn nfcpy's exceptions into reader errors (one mapping, one place)."""
    try:
        yield
    except nfc.tag.tt4.Type4TagCommandError as exc:
        # Timeout or receive error after nfcpy's own retries: the card left the field.
        if exc.errno in (nfc.tag.TIMEOUT_ERROR, nfc.tag.RECEIVE_ERROR):
            raise CardRemoved(f"{what}: {exc}") from exc
        raise TransportError(f"{what}: {exc}") from exc
    except (nfc.clf.TimeoutError, nfc.clf.BrokenLinkError, nfc.clf.TransmissionError) as exc:
        raise CardRemoved(f"{what}: {exc.__class__.__name__}") from exc
    except nfc.clf.Error as exc:
        raise TransportError(f"{what}: {exc.__class__.__name__}") from exc
    except OSError as exc:
        # USB unplugged, permission lost, socket failure.
        raise TransportError(f"{what}: {exc}") from exc


class NfcReader:
    """One nfcpy reader, e.g. ``usb:054c:06c3`` (RC-S380) or ``udp:127.0.0.1:PORT``."""

    def __init__(self, path: str) -> None:
        _require()
        self.path = path
        self._clf: Any = None
        self._cancelled = threading.Event()

    def _open(self) -> Any:
        if self._clf is None:
            clf = nfc.ContactlessFrontend()
            try:
                opened = clf.open(self.path)
            except OSError as exc:
                raise NoReader(f"{self.path}: {exc}") from exc
            if not opened:
                raise NoReader(f"no nfcpy reader at {self.path}")
            self._clf = clf
        return self._clf

    def close(self) -> None:
        if self._clf is not None:
            with contextlib.suppress(Exception):
                self._clf.close()
            self._clf = None

    def __enter__(self) -> NfcReader:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def cancel(self) -> None:
        """Wake up a ``wait_for_card`` in another thread (within one sense round)."""
        self._cancelled.set()

    def _activate(self) -> tuple[Any, bytes] | None:
        clf = self._open()
        with _mapped("sense"):
            target = clf.sense(nfc.clf.RemoteTarget("106B"), iterations=1, interval=0)
        if target is None:
            return None
        tag = nfc.tag.activate(clf, target)  # None when the ATTRIB exchange failed
        if tag is None or not isinstance(tag, nfc.tag.tt4.Type4BTag):
            return None
        return tag, bytes(target.sensb_res)

    def wait_for_card(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> NfcConnection:
        """Sense until an ISO-DEP Type 4B card answers and is activated."""
        self._cancelled.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._cancelled.is_set() or (cancel is not None and cancel.is_set()):
                raise Cancelled()
            found = self._activate()
            if found is not None:
                tag, sensb_res = found
                return NfcConnection(self, tag, sensb_res)
            if deadline is not None and time.monotonic() >= deadline:
                raise NoCard("timeout")
            time.sleep(_SENSE_INTERVAL_S)

    def wait_for_removal(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> None:
        """Block until no card answers a sense any more."""
        self._cancelled.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._cancelled.is_set() or (cancel is not None and cancel.is_set()):
                raise Cancelled()
            clf = self._open()
            with _mapped("sense"):
                clf.device.mute()
                target = clf.sense(nfc.clf.RemoteTarget("106B"), iterations=1, interval=0)
            if target is None:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise NoCard("card still present")
            time.sleep(_SENSE_INTERVAL_S)


class NfcConnection:
    """An activated Type 4B card; short APDUs through ``Type4BTag.transceive``."""

    transport = "nfc"

    def __init__(self, reader: NfcReader, tag: Any, sensb_res: bytes) -> None:
        self._reader = reader
        self._tag = tag
        self._atr = atr_for_type_b(sensb_res)
        self._closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        if self._closed:
            raise TransportError("connection closed")
        with _mapped("transceive"):
            resp = self._tag.transceive(bytearray(apdu))
        if resp is None or len(resp) < 2:
            raise CardRemoved("transceive: no response from the card")
        return bytes(resp)

    def reset(self) -> bytes:
        """Switch the field off and activate the card again (a new tap)."""
        clf = self._reader._open()
        with _mapped("reset"):
            clf.device.mute()
        found = None
        for _ in range(3):
            # ISO 14443-3 wants the field off for at least 5 ms before a card re-powers.
            time.sleep(_FIELD_OFF_S)
            found = self._reader._activate()
            if found is not None:
                break
        if found is None:
            raise CardRemoved("the card did not come back after the reset")
        self._tag, sensb_res = found
        self._atr = atr_for_type_b(sensb_res)
        return self._atr

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            clf = self._reader._clf
            if clf is not None:
                with contextlib.suppress(Exception):
                    clf.device.mute()

    def __enter__(self) -> NfcConnection:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
