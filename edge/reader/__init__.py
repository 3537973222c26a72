"""Transports: a ``Connection`` to a card, and the one APDU loop over it.

Nothing here is specific to the My Number card. Drivers (pyscard, nfcpy) are
imported only by their own modules, ``edge.reader.pcsc`` and ``edge.reader.nfc``,
so the rest imports without them.
"""

from __future__ import annotations

from ._apdu import SW, CommandApdu, ResponseApdu
from ._channel import ApduChannel, ChannelStats
from ._connection import CardHandler, CardWaiter, Connection, LoopbackConnection
from ._errors import (
    ApduError,
    AuthMethodBlocked,
    Cancelled,
    CardRemoved,
    ClaNotSupported,
    ConditionsNotSatisfied,
    FileNotFound,
    IncorrectP1P2,
    InsNotSupported,
    MalformedApdu,
    NoCard,
    NoReader,
    ReaderError,
    SecurityStatusNotSatisfied,
    TransportError,
    VerificationFailed,
    WrongLength,
    WrongOffset,
    error_for_sw,
)

__all__ = [
    "SW",
    "ApduChannel",
    "ApduError",
    "AuthMethodBlocked",
    "Cancelled",
    "CardHandler",
    "CardRemoved",
    "CardWaiter",
    "ChannelStats",
    "ClaNotSupported",
    "CommandApdu",
    "ConditionsNotSatisfied",
    "Connection",
    "FileNotFound",
    "IncorrectP1P2",
    "InsNotSupported",
    "LoopbackConnection",
    "MalformedApdu",
    "NoCard",
    "NoReader",
    "ReaderError",
    "ResponseApdu",
    "SecurityStatusNotSatisfied",
    "TransportError",
    "VerificationFailed",
    "WrongLength",
    "WrongOffset",
    "error_for_sw",
]
