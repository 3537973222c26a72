"""Contents of the card's elementary files, built from a ``CardImage``."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ._ber import tlv
from ._holder import Holder
from ._image import CardImage
from ._visual import face_record

__all__ = [
    "TOKEN_LABELS",
    "attributes_bytes",
    "attributes_file",
    "availability_file",
    "my_number_bytes",
    "my_number_file",
    "token_info_file",
    "visual_face_file",
]

TOKEN_LABELS = {
    "card": "JPKIAPICCTOKEN2",
    "android": "JPKIAPGPSETOKEN",
    "iphone": "JPKIAPIOSTOKEN",
}


def token_info_file(profile: str) -> bytes:
    """EF 0006: 160 bytes; the label in the first 32, padded with spaces, then zeros."""
    label = TOKEN_LABELS[profile].encode("ascii").ljust(32, b" ")
    return label + bytes(160 - 32)


def availability_file(image: CardImage) -> bytes:
    """EF 0008: ``8F 8F 00`` when both certificates exist; first byte ``00`` without signing."""
    return (b"\x8f" if image.has_signing_certificate else b"\x00") + b"\x8f\x00"


def my_number_file(image: CardImage) -> bytes:
    """Text AP EF 0001: ``FF10 0C`` + 12 ASCII digits + 2 filler bytes (17 bytes).

    Never read by the project; only its SHA-256 (DF31 of EF 0003) is ever seen.
    """
    return my_number_bytes(image.my_number)


def my_number_bytes(digits: str) -> bytes:
    return b"\xff\x10\x0c" + digits.encode("ascii") + b"\xff\xff"


def attributes_file(image: CardImage) -> bytes:
    """Text AP EF 0002 of ``image`` (see ``attributes_bytes``)."""
    return attributes_bytes(image.holder)


def attributes_bytes(h: Holder) -> bytes:
    """Text AP EF 0002: ``FF 20 L { DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex }``.

    DF21 holds four 2-byte big-endian offsets of the DF22..DF25 objects, counted
    from the start of the file (jpki-card.md).
    """
    fields = [
        tlv(b"\xdf\x22", h.name.encode("utf-8")),
        tlv(b"\xdf\x23", h.address.encode("utf-8")),
        tlv(b"\xdf\x24", h.birth_date.strftime("%Y%m%d").encode("ascii")),
        tlv(b"\xdf\x25", h.sex.encode("ascii")),
    ]
    df21_len = 2 + 1 + 8
    body_len = df21_len + sum(len(f) for f in fields)
    header = len(tlv(b"\xff\x20", bytes(body_len))) - body_len
    offsets, pos = [], header + df21_len
    for f in fields:
        offsets.append(pos.to_bytes(2, "big"))
        pos += len(f)
    return tlv(b"\xff\x20", tlv(b"\xdf\x21", b"".join(offsets)) + b"".join(fields))


def visual_face_file(image: CardImage) -> bytes:
    """Visual AP EF 0002: the card face record (placeholder images, real layout)."""
    h = image.holder
    pub = image.text_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    name_img = b"NAME-IMAGE:" + hashlib.sha256(h.name.encode()).digest()
    addr_img = b"ADDRESS-IMAGE:" + hashlib.sha256(h.address.encode()).digest()
    birth = h.birth_date.strftime("%Y%m%d")
    expiry = image.card_expiry.strftime("%Y%m%d")
    signed = birth.encode() + h.sex.encode() + name_img + addr_img + image.photo + expiry.encode()
    sig = image.text_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return face_record(
        birth_yyyymmdd=birth,
        sex=h.sex,
        public_key_der=pub,
        name_image=name_img,
        address_image=addr_img,
        photo=image.photo,
        signature=sig,
        expiry_yyyymmdd=expiry,
        security_code=h.security_code,
    )
