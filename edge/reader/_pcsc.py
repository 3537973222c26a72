"""PC/SC transport through pyscard (pcscd on Linux).

Every driver quirk stays in this file: result codes become reader errors,
a card reset by another application is reconnected, waiting for a card uses
``SCardGetStatusChange`` (event-driven, no polling loop) and can be cancelled.
"""

from __future__ import annotations

import builtins
import threading
import time
from types import TracebackType

from ._errors import Cancelled, CardRemoved, NoCard, NoReader, TransportError

__all__ = ["PcscConnection", "PcscReaders"]

try:  # pyscard is an optional extra ([pcsc]); the server installs without it.
    from smartcard import scard
except ImportError as exc:  # pragma: no cover - exercised only without pyscard
    scard = None
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None

_PNP = "\\\\?PnP?\\Notification"

# Result codes, as numbers so this module imports without pyscard.
_E_CANCELLED = 0x80100002
_E_TIMEOUT = 0x8010000A
_E_NO_SMARTCARD = 0x8010000C
_E_NOT_TRANSACTED = 0x80100016
_E_READER_UNAVAILABLE = 0x80100017
_E_NO_SERVICE = 0x8010001D
_E_NO_READERS_AVAILABLE = 0x8010002E
_E_UNKNOWN_READER = 0x80100009
_W_UNPOWERED_CARD = 0x80100067
_W_RESET_CARD = 0x80100068
_W_REMOVED_CARD = 0x80100069
_REMOVED = {_E_NO_SMARTCARD, _W_REMOVED_CARD, _W_UNPOWERED_CARD, _E_READER_UNAVAILABLE}


def _u32(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def _require() -> None:
    if scard is None:
        raise TransportError(f"pyscard is not installed ({_IMPORT_ERROR})")


def _fail(hresult: int, what: str) -> TransportError | CardRemoved | NoReader:
    code = _u32(hresult)
    if code in _REMOVED:
        return CardRemoved(f"{what}: 0x{code:08X}")
    if code in (_E_NO_SERVICE, _E_NO_READERS_AVAILABLE, _E_UNKNOWN_READER):
        return NoReader(f"{what}: 0x{code:08X}")
    return TransportError(f"{what}: 0x{code:08X}")


class PcscReaders:
    """The PC/SC readers of this machine; waits for a card to arrive or leave.

    ``reader``: the reader (name or name prefix) ``wait_for_card`` watches when
    it is given none; ``None`` watches every reader. With it, ``PcscReaders``
    is a ``CardWaiter``, as ``NfcReader`` is.
    """

    def __init__(self, reader: str | None = None) -> None:
        _require()
        self.reader = reader
        self._last_reader: str | None = None
        hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != 0:
            raise _fail(hresult, "SCardEstablishContext")
        self._ctx = ctx
        self._lock = threading.Lock()

    def close(self) -> None:
        scard.SCardReleaseContext(self._ctx)

    def __enter__(self) -> PcscReaders:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def list(self) -> list[str]:
        """Names of the connected readers (empty list if none)."""
        hresult, names = scard.SCardListReaders(self._ctx, [])
        if _u32(hresult) in (_E_NO_READERS_AVAILABLE,):
            return []
        if hresult != 0:
            raise _fail(hresult, "SCardListReaders")
        return list(names)

    def cancel(self) -> None:
        """Wake up a ``wait_for_card`` / ``wait_for_removal`` in another thread."""
        scard.SCardCancel(self._ctx)

    def _pick(self, reader: str | None) -> builtins.list[str]:
        names = self.list()
        if reader is None:
            return names
        hits = [n for n in names if n == reader] or [n for n in names if n.startswith(reader)]
        if not hits:
            raise NoReader(f"reader {reader!r} not found")
        return hits[:1]

    def _wait(
        self,
        reader: str | None,
        want_present: bool,
        timeout: float | None,
        cancel: threading.Event | None,
    ) -> tuple[str, bytes]:
        names = self._pick(reader)
        states: builtins.list[tuple[str, int]] = [(n, scard.SCARD_STATE_UNAWARE) for n in names]
        if reader is None:
            states.append((_PNP, scard.SCARD_STATE_UNAWARE))
        ms = scard.INFINITE if timeout is None else max(0, int(timeout * 1000))
        watcher: threading.Thread | None = None
        done = threading.Event()
        if cancel is not None:

            def _watch() -> None:
                while not done.is_set():
                    if cancel.wait(0.05):
                        scard.SCardCancel(self._ctx)
                        return

            watcher = threading.Thread(target=_watch, daemon=True)
            watcher.start()
        try:
            while True:
                hresult, new = scard.SCardGetStatusChange(self._ctx, ms, states)
                code = _u32(hresult)
                if code == _E_TIMEOUT:
                    raise NoCard("timeout")
                if code == _E_CANCELLED:
                    raise Cancelled()
                if hresult != 0:
                    raise _fail(hresult, "SCardGetStatusChange")
                states = []
                rescan = False
                for name, event, atr in new:
                    if name == _PNP:
                        rescan = rescan or bool(event & scard.SCARD_STATE_CHANGED)
                        states.append((name, event & ~scard.SCARD_STATE_CHANGED))
                        continue
                    present = bool(event & scard.SCARD_STATE_PRESENT) and not (
                        event & scard.SCARD_STATE_MUTE
                    )
                    if present == want_present and not (event & scard.SCARD_STATE_UNAVAILABLE):
                        return name, bytes(atr)
                    states.append((name, event & ~scard.SCARD_STATE_CHANGED))
                if rescan:
                    known = {n for n, _ in states}
                    states += [
                        (n, scard.SCARD_STATE_UNAWARE) for n in self.list() if n not in known
                    ]
        finally:
            done.set()

    def wait_for_card(
        self,
        reader: str | None = None,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> PcscConnection:
        """Block until a card is present (in ``reader``, the default reader or any) and connect."""
        name, _ = self._wait(reader or self.reader, True, timeout, cancel)
        self._last_reader = name
        return PcscConnection(self._ctx, name)

    def wait_for_removal(
        self,
        reader: str | None = None,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Block until ``reader`` (default: the one the last card came in) has no card.

        With no reader known (a new process: the last card came in before it started),
        until no reader has one.
        """
        name = reader or self._last_reader or self.reader
        if name is not None:
            self._wait(name, False, timeout, cancel)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while (present := self._with_card()) is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._wait(present, False, left, cancel)

    def _with_card(self) -> str | None:
        """A reader with a card in it now, if any."""
        names = self.list()
        if not names:
            return None
        states = [(n, scard.SCARD_STATE_UNAWARE) for n in names]
        hresult, new = scard.SCardGetStatusChange(self._ctx, 0, states)
        if hresult != 0 and _u32(hresult) != _E_TIMEOUT:
            raise _fail(hresult, "SCardGetStatusChange")
        for name, event, _atr in new:
            if event & scard.SCARD_STATE_PRESENT and not event & scard.SCARD_STATE_MUTE:
                return str(name)
        return None


class PcscConnection:
    """A connected card in a PC/SC reader."""

    transport = "pcsc"

    def __init__(self, ctx: int, reader: str) -> None:
        self.reader = reader
        self._last_reader: str | None = None
        self._ctx = ctx
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        hresult, card, proto = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED, protocols)
        if hresult != 0:
            raise _fail(hresult, "SCardConnect")
        self._card = card
        self._proto = proto
        self._atr = self._status_atr()

    def _status_atr(self) -> bytes:
        hresult, _reader, _state, _proto, atr = scard.SCardStatus(self._card)
        if hresult != 0:
            raise _fail(hresult, "SCardStatus")
        return bytes(atr)

    @property
    def atr(self) -> bytes:
        return self._atr

    def _reconnect(self, how: int) -> None:
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        hresult, proto = scard.SCardReconnect(self._card, scard.SCARD_SHARE_SHARED, protocols, how)
        if hresult != 0:
            raise _fail(hresult, "SCardReconnect")
        self._proto = proto
        self._atr = self._status_atr()

    def transmit(self, apdu: bytes) -> bytes:
        hresult, resp = scard.SCardTransmit(self._card, self._proto, list(apdu))
        if _u32(hresult) == _W_RESET_CARD:
            # Another application reset the card: reconnect; the caller must select again.
            self._reconnect(scard.SCARD_LEAVE_CARD)
            raise CardRemoved("card was reset")
        if _u32(hresult) == _E_NOT_TRANSACTED:
            # The exchange with the card broke off: on contactless readers (and vpcd)
            # that is the card leaving the field, before pcscd's presence poll sees it.
            raise CardRemoved("SCardTransmit: exchange broke off (0x80100016)")
        if hresult != 0:
            raise _fail(hresult, "SCardTransmit")
        if len(resp) < 2:
            # No status word: the card stopped answering mid-exchange (vpcd reports a
            # vanished card this way). A card never answers without SW1 SW2.
            raise CardRemoved("SCardTransmit: no response from the card")
        return bytes(resp)

    def reset(self) -> bytes:
        self._reconnect(scard.SCARD_RESET_CARD)
        return self._atr

    def close(self) -> None:
        scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
