"""The transport contract: what every reader driver offers."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

__all__ = ["CardHandler", "CardWaiter", "Connection", "LoopbackConnection"]


@runtime_checkable
class Connection(Protocol):
    """One card in one reader.

    ``transmit`` sends one raw command APDU and returns the raw response (data
    and SW). It raises ``CardRemoved`` when the card left the field and
    ``TransportError`` when the driver failed; it never interprets status words.
    """

    transport: str

    @property
    def atr(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...

    def reset(self) -> bytes:
        """Reset the card (cold/warm as the transport allows); returns the new ATR."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class CardWaiter(Protocol):
    """A reader the case flow waits on: PC/SC (``PcscReaders``) and nfcpy (``NfcReader``) alike.

    ``wait_for_card`` blocks until a card (or phone) is in the field and returns
    its connection; it raises ``NoCard`` on timeout and ``Cancelled`` when
    ``cancel`` is set or ``cancel()`` is called from another thread.
    """

    def wait_for_card(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> Connection: ...

    def wait_for_removal(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> None:
        """Block until the last card is out of the field (a case ends with the card handed back)."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class CardHandler(Protocol):
    """Something that answers APDUs in process (the virtual card)."""

    def power_on(self) -> bytes:
        """Power up / reset; returns the ATR."""
        ...

    def process(self, apdu: bytes) -> bytes:
        """Answer one raw command APDU with a raw response APDU.

        May raise ``CardRemoved`` to play a card leaving the field.
        """
        ...


class LoopbackConnection:
    """In-process transport: APDUs go straight to a ``CardHandler``."""

    transport = "loopback"

    def __init__(self, card: CardHandler) -> None:
        self._card = card
        self._atr = card.power_on()
        self._closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        if self._closed:
            from ._errors import TransportError

            raise TransportError("connection closed")
        return self._card.process(bytes(apdu))

    def reset(self) -> bytes:
        self._atr = self._card.power_on()
        return self._atr

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> LoopbackConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
