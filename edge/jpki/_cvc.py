"""Card-verifiable certificates (CVC) of the text AP: EF 0004, and the card key of EF 0007.

Real cards do not certify the text AP's keys with X.509 (docs/jpki-card.md, "The text AP"):

- EF 0004 = ``7F21 { 5F4E body, 5F37 sig }``; the 297-byte body is the 16-byte key id
  of the certifying CA (証明者鍵ID), the 16-byte key id of the certified issuer key,
  ``90 03 010001`` (exponent) and ``91 82 0100`` (modulus). ``sig`` is RSA-2048
  PKCS#1 v1.5 / SHA-256 over the body by a CA key that is **not on the card**: the
  verifier pins the CA public keys by key id.
- EF 0007 = ``FF50 { DF51 { 90 exponent, 91 modulus }, DF52 sig }``: the card's own
  public key; ``sig`` is by the issuer key (EF 0004) over the DF51 object (tag and
  length included).

Parsing is hand-written over the project's BER-TLV helper: no maintained PyPI
library parses these J-LIS records (``pyasn1``/``asn1crypto`` do not model the
raw-concatenated body). Every failure is ``MalformedCertificate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._errors import BadSignature, MalformedCertificate, MalformedData, RootNotPinned
from ._tlv import parse_tlv, parse_tlvs, split_tlvs

__all__ = [
    "KEY_ID_LENGTH",
    "PINNED_CVC_CA_KEYS",
    "CardKeyCertificate",
    "CardVerifiableCertificate",
    "CvcCaKey",
    "check_pkcs1_sha256",
    "cvc_ca_key",
    "cvc_ca_key_from_pem",
    "parse_card_key",
    "parse_cvc",
    "rsa_key_from_tlvs",
]

KEY_ID_LENGTH = 16
_TAG_CVC, _TAG_BODY, _TAG_SIGNATURE = 0x7F21, 0x5F4E, 0x5F37
_TAG_EXPONENT, _TAG_MODULUS = 0x90, 0x91
_TAG_CARD_KEY, _TAG_CARD_PUBLIC, _TAG_CARD_SIG = 0xFF50, 0xDF51, 0xDF52
_MIN_MODULUS_BYTES = 128  # RSA-1024: anything shorter is not a J-LIS key
_MAX_MODULUS_BYTES = 512


@dataclass(frozen=True)
class CvcCaKey:
    """A CA public key a verifier holds, named by its 16-byte key id (証明者鍵ID)."""

    name: str
    key_id: bytes
    public_key: rsa.RSAPublicKey = field(repr=False)
    test: bool = False

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex().upper()

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _production(name: str, key_id_hex: str, modulus_hex: str) -> CvcCaKey:
    n = int(modulus_hex, 16)
    return CvcCaKey(name, bytes.fromhex(key_id_hex), rsa.RSAPublicNumbers(65537, n).public_key())


# The production CA key of the 券面事項入力補助AP: key id "5000033" 08 05 "001" 00000000.
# Its modulus is a public fact, as published in soltia48/myna-card (src/ca.rs); the key
# id and where it comes from are in docs/jpki-card.md ("The text AP"). J-LIS's test
# hierarchy ("6000033 ...") is not pinned: a test key is installed in a roots directory
# and accepted in test mode only.
PINNED_CVC_CA_KEYS: Mapping[bytes, CvcCaKey] = {
    k.key_id: k
    for k in (
        _production(
            "text-ap-ca-5000033",
            "35303030303333080530303100000000",
            "D24615F63525E740C87E83ED64787E76D10A1F8652EBE1EA28934D35CE3BF077"
            "16F5B79E2BCB2AE2B91B4F4C9FFB602497F596D659AF9D0A14B45CDD738EF562"
            "49349B8CC7DB32F2D433BD39BCC44F503E881D56C149ECD5155C1CE7461FC3AC"
            "4F55D0A39CCAAADFAE5B8AFA11CCF91BEDC774023D11CA6EBA99004F81C541A7"
            "D67DDED8C724D6E20B10A3DEAAE8C43C137CCD71B263740E8979752DE4D56763"
            "29CABCBD7F3A77FC48A6F8E61D399B4AC66684A9FDFC99ECEF900DD6FF7F0FDD"
            "39E23D163F8A468C62DBEAE00906DFAD5A89B45CA5B7353DC998A80D3803EDA7"
            "94B55F99F535D1C39A243C8352AD602D926C389D2816C941349EE24E4F41597F",
        ),
    )
}


def check_pkcs1_sha256(key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> None:
    """RSASSA-PKCS1-v1_5 / SHA-256 of ``message`` under ``key``, else ``BadSignature``."""
    if len(signature) != (key.key_size + 7) // 8:
        raise BadSignature(f"signature has {len(signature)} bytes")
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise BadSignature() from exc


def rsa_key_from_tlvs(data: bytes) -> rsa.RSAPublicKey:
    """``90 exponent, 91 modulus`` (big-endian) as an RSA public key."""
    fields: dict[int, bytes] = {}
    for t in parse_tlvs(data):
        fields.setdefault(t.tag, t.value)
    try:
        e_raw, n_raw = fields[_TAG_EXPONENT], fields[_TAG_MODULUS]
    except KeyError as exc:
        raise MalformedCertificate("public key without exponent or modulus") from exc
    if not _MIN_MODULUS_BYTES <= len(n_raw) <= _MAX_MODULUS_BYTES or not 1 <= len(e_raw) <= 8:
        raise MalformedCertificate("public key of an unexpected size")
    e, n = int.from_bytes(e_raw, "big"), int.from_bytes(n_raw, "big")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise MalformedCertificate("not an RSA public key") from exc


@dataclass(frozen=True)
class CardVerifiableCertificate:
    """EF 0004, parsed: who certified (``ca_key_id``) which key (``key_id``)."""

    ca_key_id: bytes
    key_id: bytes
    public_key: rsa.RSAPublicKey = field(repr=False)
    body: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def verify_under(self, ca_key: rsa.RSAPublicKey) -> None:
        """The CA's signature over the body, else ``BadSignature``."""
        check_pkcs1_sha256(ca_key, self.signature, self.body)


def parse_cvc(raw: bytes) -> CardVerifiableCertificate:
    """Parse EF 0004 (``7F21 { 5F4E body, 5F37 sig }``); ``MalformedCertificate`` otherwise."""
    try:
        outer, _ = parse_tlv(raw)
        if outer.tag != _TAG_CVC:
            raise MalformedCertificate(f"EF 0004 starts with tag {outer.tag:X}, not 7F21")
        fields: dict[int, bytes] = {}
        for t in parse_tlvs(outer.value):
            fields.setdefault(t.tag, t.value)
        body, signature = fields.get(_TAG_BODY), fields.get(_TAG_SIGNATURE)
        if body is None or signature is None:
            raise MalformedCertificate("CVC without body (5F4E) or signature (5F37)")
        if len(body) <= 2 * KEY_ID_LENGTH:
            raise MalformedCertificate("CVC body too short")
        key = rsa_key_from_tlvs(body[2 * KEY_ID_LENGTH :])
    except MalformedCertificate:
        raise
    except MalformedData as exc:
        raise MalformedCertificate(exc.detail) from exc
    return CardVerifiableCertificate(
        ca_key_id=body[:KEY_ID_LENGTH],
        key_id=body[KEY_ID_LENGTH : 2 * KEY_ID_LENGTH],
        public_key=key,
        body=body,
        signature=signature,
    )


@dataclass(frozen=True)
class CardKeyCertificate:
    """EF 0007, parsed: the card's own public key and the issuer key's signature over it."""

    public_key: rsa.RSAPublicKey = field(repr=False)
    signed_object: bytes = field(repr=False)  # the DF51 object as stored (tag, length, value)
    signature: bytes = field(repr=False)

    def verify_under(self, issuer_key: rsa.RSAPublicKey) -> None:
        """DF52 over the DF51 object by the issuer key (EF 0004), else ``BadSignature``."""
        check_pkcs1_sha256(issuer_key, self.signature, self.signed_object)


def parse_card_key(raw: bytes) -> CardKeyCertificate:
    """Parse EF 0007 (``FF50 { DF51 { 90, 91 }, DF52 sig }``); ``MalformedCertificate``."""
    try:
        outer, _ = parse_tlv(raw)
        if outer.tag != _TAG_CARD_KEY:
            raise MalformedCertificate(f"EF 0007 starts with tag {outer.tag:X}, not FF50")
        objects: dict[int, tuple[bytes, bytes]] = {}
        for t, stored in split_tlvs(outer.value):
            objects.setdefault(t.tag, (t.value, stored))
        if _TAG_CARD_PUBLIC not in objects or _TAG_CARD_SIG not in objects:
            raise MalformedCertificate("card key without DF51 or DF52")
        value, stored = objects[_TAG_CARD_PUBLIC]
        key = rsa_key_from_tlvs(value)
    except MalformedCertificate:
        raise
    except MalformedData as exc:
        raise MalformedCertificate(exc.detail) from exc
    return CardKeyCertificate(key, stored, objects[_TAG_CARD_SIG][0])


def cvc_ca_key_from_pem(key_id: bytes, pem: bytes, *, name: str | None = None) -> CvcCaKey:
    """A CVC CA key from a PEM SubjectPublicKeyInfo (a ``cvc-ca-<key id>.pem`` file).

    A key id that is a pinned production one must carry exactly the pinned key
    (else ``RootNotPinned``); any other key id is a test key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise MalformedCertificate("unreadable CVC CA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise MalformedCertificate("CVC CA key is not RSA")
    return cvc_ca_key(key_id, key, name=name)


def cvc_ca_key(key_id: bytes, key: rsa.RSAPublicKey, *, name: str | None = None) -> CvcCaKey:
    """The pinned production key for ``key_id`` (which ``key`` must equal), else a test key.

    A test key is accepted by a ``TrustStore`` in test mode only.
    """
    if len(key_id) != KEY_ID_LENGTH:
        raise MalformedCertificate("CVC CA key id is not 16 bytes")
    pinned = PINNED_CVC_CA_KEYS.get(key_id)
    if pinned is not None:
        if pinned.public_key.public_numbers() != key.public_numbers():
            raise RootNotPinned(f"CVC CA key {key_id.hex().upper()} differs from the pinned one")
        return pinned
    return CvcCaKey(name or f"test-cvc-{key_id.hex().upper()[:16]}", key_id, key, test=True)
