"""The one APDU loop: response chaining, Le correction, typed errors, stats, masked logs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ._apdu import SW, CommandApdu, ResponseApdu
from ._connection import Connection
from ._errors import Cancelled, MalformedApdu, error_for_sw

__all__ = ["ApduChannel", "ChannelStats"]

log = logging.getLogger("edge.reader.apdu")

_GET_RESPONSE_INS = 0xC0
# A card that keeps answering 61xx / 6Cxx forever must not hang the reader.
_MAX_CHAIN = 64


@dataclass
class ChannelStats:
    """What crossed the wire: APDUs sent (including GET RESPONSE / re-sends) and bytes."""

    apdus: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class ApduChannel:
    """Sends command APDUs over a ``Connection`` and returns checked responses.

    - ``61xx``: the rest is fetched with GET RESPONSE (``00 C0 00 00 xx``) and joined;
    - ``6Cxx``: the command is re-sent with ``Le = xx``;
    - any other status word than ``9000`` becomes a typed ``ApduError`` (``check=True``).

    Logs at DEBUG show commands with the data of VERIFY-like commands masked,
    and only the length and status word of responses (response data may be personal).
    """

    def __init__(self, connection: Connection, *, cancel: threading.Event | None = None) -> None:
        self.connection = connection
        self.cancel = cancel
        self.stats = ChannelStats()

    def _raw(self, cmd: CommandApdu) -> ResponseApdu:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        raw = cmd.to_bytes()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("> %s", cmd.masked())
        out = self.connection.transmit(raw)
        self.stats.apdus += 1
        self.stats.bytes_sent += len(raw)
        self.stats.bytes_received += len(out)
        resp = ResponseApdu.parse(out)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("< %d bytes SW=%04X", len(resp.data), resp.sw)
        return resp

    def transceive(self, cmd: CommandApdu) -> ResponseApdu:
        """Send ``cmd``; handle ``61xx``/``6Cxx``; return the final response unchecked."""
        resp = self._raw(cmd)
        for _ in range(_MAX_CHAIN):
            if resp.sw1 == 0x6C:
                cmd = CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, resp.sw2 or 256)
                resp = self._raw(cmd)
                continue
            if resp.sw1 == 0x61:
                data = resp.data
                more = self._raw(CommandApdu(0x00, _GET_RESPONSE_INS, 0, 0, le=resp.sw2 or 256))
                resp = ResponseApdu(data + more.data, more.sw)
                continue
            return resp
        raise MalformedApdu("endless 61xx/6Cxx chain")

    def send(self, cmd: CommandApdu, *, check: bool = True) -> ResponseApdu:
        """Send ``cmd`` and return its response; raise a typed error unless SW is 9000."""
        resp = self.transceive(cmd)
        if check and resp.sw != SW.OK:
            raise error_for_sw(resp.sw, resp.data)
        return resp
