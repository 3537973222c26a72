"""Small APDU helpers for the simulator tests (raw bytes, no edge.jpki)."""

from __future__ import annotations

from edge.card_sim import AID_JPKI, AID_TEXT, AID_VISUAL
from edge.reader import ApduChannel, CommandApdu, ResponseApdu

AIDS = {"jpki": AID_JPKI, "text": AID_TEXT, "visual": AID_VISUAL}


def select_ap(ch: ApduChannel, name: str, check: bool = True) -> ResponseApdu:
    return ch.send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, AIDS[name]), check=check)


def select_ef(ch: ApduChannel, fid: int, check: bool = True) -> ResponseApdu:
    return ch.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")), check=check)


def read(ch: ApduChannel, offset: int, le: int, check: bool = True) -> ResponseApdu:
    return ch.send(CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=le), check=check)


def read_der(ch: ApduChannel, fid: int) -> bytes:
    """Read a DER object from an EF: header first, then the rest (as a reader should)."""
    select_ef(ch, fid)
    buf = read(ch, 0, 4).data
    total = int.from_bytes(buf[2:4], "big") + 4
    while len(buf) < total:
        buf += read(ch, len(buf), min(256, total - len(buf))).data
    return buf


def read_tlv_file(ch: ApduChannel, fid: int) -> bytes:
    """Read a BER TLV file (FFxx tag, short or long length)."""
    select_ef(ch, fid)
    buf = read(ch, 0, 5).data
    first = buf[2]
    if first < 0x80:
        total = 3 + first
    else:
        n = first & 0x7F
        total = 3 + n + int.from_bytes(buf[3 : 3 + n], "big")
    while len(buf) < total:
        buf += read(ch, len(buf), min(256, total - len(buf))).data
    return buf[:total]


def verify(ch: ApduChannel, pin: str | None, check: bool = False) -> ResponseApdu:
    data = pin.encode() if pin is not None else b""
    return ch.send(CommandApdu(0x00, 0x20, 0x00, 0x80, data), check=check)
