"""The visual AP's card face record (券面AP EF 0002) and a placeholder photo."""

from __future__ import annotations

import random

from ._ber import tlv

__all__ = ["face_record", "placeholder_photo"]

# JPEG 2000 (JP2) signature box + file type box: the photo on real cards is JPEG 2000.
_JP2_HEAD = bytes.fromhex("0000000C6A5020200D0A870A000000146674797020206A703220000000006A703220")


def placeholder_photo(rng: random.Random, size: int = 2400) -> bytes:
    """A JPEG-2000-looking blob (right magic, random body): not a real image."""
    body = bytes(rng.getrandbits(8) for _ in range(size - len(_JP2_HEAD) - 2))
    return _JP2_HEAD + body + b"\xff\xd9"


def face_record(
    *,
    birth_yyyymmdd: str,
    sex: str,
    public_key_der: bytes,
    name_image: bytes,
    address_image: bytes,
    photo: bytes,
    signature: bytes,
    expiry_yyyymmdd: str,
    security_code: str,
) -> bytes:
    """``FF 40 L { DF21 header, DF22 birth, DF23 sex, DF24 public key, DF25 name image,
    DF26 address image, DF27 photo, DF28 signature, DF29 expiry, DF2A security code }``.

    The field order follows public readers of the visual AP; the exact tags of real
    cards are not confirmed (see docs/card-sim.md).
    """
    parts = [
        tlv(b"\xdf\x21", b"\x01\x00"),
        tlv(b"\xdf\x22", birth_yyyymmdd.encode("ascii")),
        tlv(b"\xdf\x23", sex.encode("ascii")),
        tlv(b"\xdf\x24", public_key_der),
        tlv(b"\xdf\x25", name_image),
        tlv(b"\xdf\x26", address_image),
        tlv(b"\xdf\x27", photo),
        tlv(b"\xdf\x28", signature),
        tlv(b"\xdf\x29", expiry_yyyymmdd.encode("ascii")),
        tlv(b"\xdf\x2a", security_code.encode("ascii")),
    ]
    return tlv(b"\xff\x40", b"".join(parts))
