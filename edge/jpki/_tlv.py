"""BER-TLV (ISO/IEC 7816-4 / X.690) parsing: tags, long-form lengths, nested records.

Only definite lengths (up to 4 length bytes) and tags of up to 4 bytes: what the
My Number card uses, and enough to reject anything else with a typed error.
Every failure is ``MalformedData``; no other exception leaves this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._errors import MalformedData

__all__ = ["Tlv", "encode_tlv", "header_total_length", "parse_tlv", "parse_tlvs", "split_tlvs"]

_MAX_TAG_BYTES = 4
_MAX_LENGTH_BYTES = 4


class _Short(MalformedData):
    """The data ends inside a tag or length field (more bytes may complete it)."""


@dataclass(frozen=True, slots=True)
class Tlv:
    """One BER-TLV: ``tag`` as the integer of its bytes (e.g. ``0xFF20``), ``value`` raw."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        """The TLVs inside a constructed value."""
        if not self.constructed:
            raise MalformedData(f"tag {self.tag:X} is primitive")
        return parse_tlvs(self.value)

    def __repr__(self) -> str:
        # Values may be personal (name, address): never print them.
        return f"Tlv(tag={self.tag:X}, length={len(self.value)})"


def _tag(buf: bytes | memoryview, i: int) -> tuple[int, int]:
    if i >= len(buf):
        raise _Short("missing tag")
    first = buf[i]
    tag = first
    i += 1
    if first & 0x1F == 0x1F:
        for n in range(1, _MAX_TAG_BYTES):
            if i >= len(buf):
                raise _Short("truncated tag")
            b = buf[i]
            tag = (tag << 8) | b
            i += 1
            if not b & 0x80:
                break
            if n == _MAX_TAG_BYTES - 1:
                raise MalformedData("tag longer than 4 bytes")
    return tag, i


def _length(buf: bytes | memoryview, i: int) -> tuple[int, int]:
    if i >= len(buf):
        raise _Short("missing length")
    first = buf[i]
    i += 1
    if first < 0x80:
        return first, i
    n = first & 0x7F
    if n == 0:
        raise MalformedData("indefinite length")
    if n > _MAX_LENGTH_BYTES:
        raise MalformedData("length field too long")
    if i + n > len(buf):
        raise _Short("truncated length")
    return int.from_bytes(bytes(buf[i : i + n]), "big"), i + n


def header_total_length(prefix: bytes, *, expected_tag: int | None = None) -> int | None:
    """Total size (header + value) of the TLV starting ``prefix``.

    Returns ``None`` when ``prefix`` is too short to hold the whole header (read
    more), raises ``MalformedData`` when the header is invalid or does not have
    ``expected_tag``. This is how a file is read with the minimum number of
    READ BINARY commands: its first chunk tells its length.
    """
    if expected_tag is not None:
        want = expected_tag.to_bytes(max(1, (expected_tag.bit_length() + 7) // 8), "big")
        n = min(len(want), len(prefix))
        if bytes(prefix[:n]) != want[:n]:
            raise MalformedData(f"unexpected tag, expected {expected_tag:X}")
    try:
        tag, i = _tag(prefix, 0)
        if expected_tag is not None and tag != expected_tag:
            raise MalformedData(f"unexpected tag {tag:X}")
        length, i = _length(prefix, i)
    except _Short:
        return None
    return i + length


def parse_tlv(buf: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Parse one TLV at ``offset``; return it and the offset after it."""
    tag, i = _tag(buf, offset)
    length, i = _length(buf, i)
    if i + length > len(buf):
        raise MalformedData("value runs past the end of the data")
    return Tlv(tag, bytes(buf[i : i + length])), i + length


def _iter(buf: bytes) -> Iterator[Tlv]:
    i = 0
    while i < len(buf):
        tlv, i = parse_tlv(buf, i)
        yield tlv


def parse_tlvs(buf: bytes) -> list[Tlv]:
    """Parse a concatenation of TLVs filling ``buf`` exactly."""
    return list(_iter(bytes(buf)))


def split_tlvs(buf: bytes) -> list[tuple[Tlv, bytes]]:
    """Like ``parse_tlvs``, with each object's bytes as stored (tag, length and value).

    What a signature or hash "over the objects" covers: the card's own encoding,
    never a re-encoding (a long-form length stays long-form).
    """
    data = bytes(buf)
    out: list[tuple[Tlv, bytes]] = []
    i = 0
    while i < len(data):
        tlv, end = parse_tlv(data, i)
        out.append((tlv, data[i:end]))
        i = end
    return out


def encode_tlv(tag: int, value: bytes) -> bytes:
    """Encode one TLV (DER lengths: short form below 128, else long form)."""
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    n = len(value)
    if n < 0x80:
        length = bytes((n,))
    else:
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes((0x80 | len(body),)) + body
    return tag_bytes + length + value
