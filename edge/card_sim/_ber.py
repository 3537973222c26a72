"""Minimal BER-TLV encoding for the card's files (the card side only writes)."""

from __future__ import annotations

__all__ = ["ber_length", "tlv"]


def ber_length(n: int) -> bytes:
    """Definite length: short form below 128, else long form (81 xx / 82 xx xx)."""
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    raise ValueError("TLV value too long")


def tlv(tag: bytes | int, value: bytes) -> bytes:
    """One TLV; ``tag`` may be multi-byte (``b"\\xdf\\x21"``)."""
    t = bytes((tag,)) if isinstance(tag, int) else tag
    return t + ber_length(len(value)) + value
