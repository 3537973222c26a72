"""The JPKI AP (公的個人認証AP): token type, user-authentication certificate, PIN, signature."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from edge.reader import ApduChannel, CommandApdu, SecurityStatusNotSatisfied

from ._base import ApplicationSession, check_pin_format
from ._constants import (
    AID_JPKI,
    CLA_PROPRIETARY,
    DIGEST_INFO_SHA256_PREFIX,
    INS_COMPUTE_SIGNATURE,
    TOKEN_LABEL_LENGTH,
    TOKEN_LABELS,
    JpkiFile,
    TokenType,
)
from ._errors import (
    BadSignature,
    InvalidPinFormat,
    MalformedCertificate,
    MalformedData,
    PinRequired,
    UnknownToken,
)

__all__ = ["Availability", "JpkiSession", "TokenInfo", "digest_info_sha256", "load_certificate"]

_DER_SEQUENCE = 0x30
# COMPUTE DIGITAL SIGNATURE P2 for "key of the currently selected EF".
_SIGN_P2_SELECTED_KEY = 0x80
_AVAILABLE = 0x8F


@dataclass(frozen=True)
class TokenInfo:
    """EF 0006: the token label and what it means."""

    label: str
    token_type: TokenType


@dataclass(frozen=True)
class Availability:
    """EF 0008: which certificates the token holds."""

    raw: bytes

    @property
    def signing_certificate(self) -> bool:
        # First byte not 8F = no signing certificate (e.g. a holder under 15).
        return len(self.raw) >= 1 and self.raw[0] == _AVAILABLE


def digest_info_sha256(message: bytes) -> bytes:
    """The DER DigestInfo of SHA-256(message): what the card's RSA key signs."""
    return DIGEST_INFO_SHA256_PREFIX + hashlib.sha256(message).digest()


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse DER into a certificate; anything else is ``MalformedCertificate``."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.public_key()  # parse the key now: a broken key is a malformed certificate
    except (ValueError, TypeError) as exc:
        raise MalformedCertificate("certificate DER does not parse") from exc
    return cert


def check_rsa_signature(cert: x509.Certificate, signature: bytes, message: bytes) -> None:
    """PKCS#1 v1.5 / SHA-256 signature of ``message`` by ``cert``'s key, else ``BadSignature``."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadSignature("certificate key is not RSA")
    if len(signature) != (key.key_size + 7) // 8:
        raise BadSignature(f"signature has {len(signature)} bytes")
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise BadSignature() from exc


class JpkiSession(ApplicationSession):
    """The JPKI AP over an ``ApduChannel`` (no I/O of its own).

    The card keeps answering ``63Cx`` after a correct VERIFY, so the session
    tracks the login state itself; ``select()`` logs out.
    """

    AID = AID_JPKI

    def __init__(self, channel: ApduChannel) -> None:
        super().__init__(channel)
        self._auth_cert_der: bytes | None = None
        self._auth_cert: x509.Certificate | None = None

    @property
    def logged_in(self) -> bool:
        return self._verified

    def token_info(self) -> TokenInfo:
        """Read the 32-byte label of EF 0006 and map it to a ``TokenType``."""
        raw = self._read_fixed(JpkiFile.TOKEN_INFO, TOKEN_LABEL_LENGTH)
        label = raw.rstrip(b"\x00 \xff").decode("ascii", errors="replace")
        token_type = TOKEN_LABELS.get(label)
        if token_type is None:
            raise UnknownToken(f"label {label[:TOKEN_LABEL_LENGTH]!r}")
        return TokenInfo(label, token_type)

    def availability(self) -> Availability:
        """EF 0008: ``8F 8F 00`` = both certificates."""
        return Availability(self._read_fixed(JpkiFile.AVAILABILITY, 3))

    def read_auth_certificate(self) -> bytes:
        """The user-authentication certificate (利用者証明用), DER, fewest APDUs.

        Raises ``PinRequired`` when the token wants the PIN first (Android) and
        ``MalformedCertificate`` when the DER is truncated or does not parse.
        """
        try:
            der = self._read_tlv_file(
                JpkiFile.AUTH_CERT, expected_tag=_DER_SEQUENCE, error=MalformedCertificate
            )
        except SecurityStatusNotSatisfied as exc:
            raise PinRequired("the token protects its certificate with the PIN") from exc
        cert = load_certificate(der)
        self._auth_cert_der, self._auth_cert = der, cert
        return der

    def read_auth_ca_certificate(self) -> bytes:
        """EF 000B. Never trust it: it comes from the same card (diagnostics only)."""
        return self._read_tlv_file(
            JpkiFile.AUTH_CA_CERT, expected_tag=_DER_SEQUENCE, error=MalformedCertificate
        )

    def auth_pin_attempts(self) -> int:
        """Tries left on the user-auth PIN (0 = blocked), without using one."""
        self._select_ef(JpkiFile.AUTH_PIN)
        return self._retry_counter()

    def verify_auth_pin(self, pin: str, *, allow_last_try: bool = False) -> None:
        """VERIFY the 4-digit user-auth PIN (EF 0018) after reading the counter.

        Raises ``InvalidPinFormat`` (nothing sent), ``LastTryNeedsConfirmation``
        (one try left and ``allow_last_try`` false), ``WrongPin(tries_left)``,
        ``PinBlocked``.
        """
        secret = check_pin_format(pin, InvalidPinFormat)
        self._verify(JpkiFile.AUTH_PIN, secret, allow_last_try=allow_last_try)

    def sign_with_auth_key(self, message: bytes) -> bytes:
        """Sign SHA-256(message) with the user-auth key; checked before it is returned.

        Needs a verified PIN. The certificate is read first if this session has
        not read it yet. A signature that does not verify (a zero buffer from a
        confused middleware, a wrong key) raises ``BadSignature``.
        """
        self._require_verified()
        if self._auth_cert is None:
            self.read_auth_certificate()
        assert self._auth_cert is not None
        self._select_ef(JpkiFile.AUTH_KEY)
        cmd = CommandApdu(
            CLA_PROPRIETARY,
            INS_COMPUTE_SIGNATURE,
            0x00,
            _SIGN_P2_SELECTED_KEY,
            digest_info_sha256(message),
            le=256,
        )
        try:
            signature = self.channel.send(cmd).data
        except SecurityStatusNotSatisfied as exc:
            self._verified = False
            raise PinRequired("the card refused the signature (6982)") from exc
        check_rsa_signature(self._auth_cert, signature, message)
        return signature

    @property
    def auth_certificate(self) -> x509.Certificate:
        if self._auth_cert is None:
            raise MalformedData("the certificate has not been read")
        return self._auth_cert
