"""Short APDUs (ISO/IEC 7816-4), encoded and parsed.

Only short APDUs: every public implementation of the My Number card uses them,
and nfcpy's Type 4B tag does too. Extended length is refused with a typed error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ._errors import MalformedApdu

__all__ = ["SW", "CommandApdu", "ResponseApdu"]


class SW(IntEnum):
    """Status words the project names."""

    OK = 0x9000
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1P2 = 0x6A86
    WRONG_OFFSET = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00


# Instructions whose command data is a secret (VERIFY, CHANGE REFERENCE DATA,
# RESET RETRY COUNTER): their bodies are masked wherever an APDU is printed.
SECRET_INS = frozenset({0x20, 0x24, 0x2C})


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A short command APDU. ``le`` None = no Le; 256 is encoded as ``00``."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFF:
                raise MalformedApdu(f"{name} out of range")
        if len(self.data) > 255:
            raise MalformedApdu("command data longer than 255 bytes (extended APDUs unsupported)")
        if self.le is not None and not 1 <= self.le <= 256:
            raise MalformedApdu("Le out of range 1..256")

    def to_bytes(self) -> bytes:
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Parse a short APDU (cases 1-4). Any other shape raises ``MalformedApdu``."""
        if len(raw) < 4:
            raise MalformedApdu("command APDU shorter than 4 bytes")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        lc = body[0]
        if lc == 0:
            raise MalformedApdu("extended-length APDU unsupported")
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1:]))
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), le=body[-1] or 256)
        raise MalformedApdu("Lc does not match the command length")

    def masked(self) -> str:
        """Hex for logs; the data of VERIFY-like commands is replaced by ``**``."""
        head = bytes((self.cla, self.ins, self.p1, self.p2)).hex().upper()
        if self.data:
            body = "**" * len(self.data) if self.ins in SECRET_INS else self.data.hex().upper()
            head += f" {len(self.data):02X} {body}"
        if self.le is not None:
            head += f" {self.le & 0xFF:02X}"
        return head


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data and status word."""

    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == SW.OK

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise MalformedApdu("response APDU shorter than 2 bytes")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))
