"""The text AP's signed files as real cards lay them out (jpki-card.md, "Text AP").

- EF 0004: ``7F21 { 5F4E body, 5F37 sig }``: the issuer key's card-verifiable
  certificate; body = CA key id (16) || issuer key id (16) || ``90 03 010001`` ||
  ``91 82 0100 modulus``; sig by the test CVC CA key over the body.
- EF 0003: ``FF30 { DF31 h(EF 0001), DF32 h(DF22..DF25 objects), DF33 sig }``; sig by
  the issuer key over the DF31 and DF32 objects (tags and lengths included).
- EF 0005: ``FF40 { DF41, DF42 issuer key id, DF43 }`` (DF41 and DF43 are placeholders:
  their meaning is not published).
- EF 0007: ``FF50 { DF51 { 90 e, 91 n }, DF52 sig }``: the card's own public key,
  certified by the issuer key (sig over the DF51 object).

Only the simulator writes these; the reader's parsers in ``edge.jpki`` are tested
against hex fixtures written from the public facts, not against this encoder.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._ber import tlv

__all__ = [
    "card_key_file",
    "cvc_file",
    "integrity_file",
    "key_info_file",
    "rsa_public_tlvs",
]


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_public_tlvs(key: rsa.RSAPublicKey) -> bytes:
    """``90 exponent, 91 modulus`` (big-endian, modulus to the key's full length)."""
    nums = key.public_numbers()
    e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
    n = nums.n.to_bytes((key.key_size + 7) // 8, "big")
    return tlv(b"\x90", e) + tlv(b"\x91", n)


def cvc_file(
    ca_key: rsa.RSAPrivateKey, ca_key_id: bytes, issuer: rsa.RSAPublicKey, issuer_key_id: bytes
) -> bytes:
    """EF 0004: the CA's card-verifiable certificate of the issuer key."""
    body = ca_key_id + issuer_key_id + rsa_public_tlvs(issuer)
    return tlv(b"\x7f\x21", tlv(b"\x5f\x4e", body) + tlv(b"\x5f\x37", _sign(ca_key, body)))


def integrity_file(issuer_key: rsa.RSAPrivateKey, my_number: bytes, attributes: bytes) -> bytes:
    """EF 0003 over EF 0001 (as stored) and the DF22..DF25 objects of EF 0002."""
    h1 = tlv(b"\xdf\x31", hashlib.sha256(my_number).digest())
    h2 = tlv(b"\xdf\x32", hashlib.sha256(_attribute_objects(attributes)).digest())
    return tlv(b"\xff\x30", h1 + h2 + tlv(b"\xdf\x33", _sign(issuer_key, h1 + h2)))


def key_info_file(issuer_key_id: bytes) -> bytes:
    """EF 0005 (free)."""
    return tlv(
        b"\xff\x40",
        tlv(b"\xdf\x41", b"\x01") + tlv(b"\xdf\x42", issuer_key_id) + tlv(b"\xdf\x43", b"\x00"),
    )


def card_key_file(issuer_key: rsa.RSAPrivateKey, card_key: rsa.RSAPublicKey) -> bytes:
    """EF 0007: the card's own public key, certified by the issuer key (DF52)."""
    df51 = tlv(b"\xdf\x51", rsa_public_tlvs(card_key))
    return tlv(b"\xff\x50", df51 + tlv(b"\xdf\x52", _sign(issuer_key, df51)))


def _attribute_objects(attributes: bytes) -> bytes:
    """The FF20 contents without the DF21 object (the simulator wrote them: simple walk)."""
    i = 2  # FF 20
    first = attributes[i]
    i += 1 + (first & 0x7F if first & 0x80 else 0)
    out = b""
    while i < len(attributes):
        tag = attributes[i : i + 2]
        j = i + 2
        first = attributes[j]
        if first & 0x80:
            n = first & 0x7F
            length = int.from_bytes(attributes[j + 1 : j + 1 + n], "big")
            j += 1 + n
        else:
            length = first
            j += 1
        if tag != b"\xdf\x21":
            out += attributes[i : j + length]
        i = j + length
    return out
