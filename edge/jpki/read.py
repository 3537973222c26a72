"""The read-and-verify flow: one tap, one result that says per part what was verified.

Used by ``kyukyu card read``, the demo and the case flow. ``read_card`` raises
only when nothing usable was read: the card is not a My Number card, the
certificate cannot be read (card removed, Android token without PIN, malformed
DER), or the read was cancelled. Once the certificate is read, every other
outcome is recorded in the result, part by part (see ``edge.jpki._outcome``):

========================  ==================================================
``certificate_check``     trusted / untrusted (code) / not verified on the
                          device (issuer not pinned here: ask the platform) /
                          not checked (no trust store)
``pin_proof``             the auth key's signature over the challenge (PIN)
``attributes_check``      the four attributes: verified / not verified (code,
                          values shown marked) / tampered (refused, values
                          withheld) / failed (wrong 照合番号B, card removed ...)
``card_presence``         the text AP's own signature over a fresh challenge
``photo``                 read (nothing to verify it against) / failed
========================  ==================================================

Nothing here is logged except step names: the subject, attributes and PIN stay
in the returned result only.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from edge.reader import ApduChannel, Cancelled, ReaderError
from errbase import KyukyuError

from ._base import check_pin_format
from ._constants import TokenType
from ._errors import (
    BadSignature,
    CvcCaNotPinned,
    IntegrityError,
    InvalidPinFormat,
    JpkiError,
    NoTrustAnchors,
    PinError,
    PinNotTried,
    PinRequired,
    TrustError,
    UntrustedIssuer,
)
from ._jpki import JpkiSession
from ._outcome import NOT_REQUESTED, CertificateCheck, CertificateStatus, Check, CheckStatus
from ._text import Attributes, TextSession, check_collation_b, parse_attributes
from ._visual import FaceRecord, VisualSession
from .revocation import RevocationSnapshot
from .trust import JST, TrustStore, Verdict, verify_auth_certificate, verify_text_ap_issuer

__all__ = [
    "CardReadResult",
    "CertificateCheck",
    "CertificateStatus",
    "CertificateSummary",
    "Check",
    "CheckStatus",
    "Proof",
    "ReadOptions",
    "read_card",
]

log = logging.getLogger("edge.jpki.read")

_CHALLENGE_BYTES = 32
# What a part may fail with and still leave the rest of the read standing. Cancelled is
# a ReaderError too, but a cancel stops the whole read: it is re-raised.
_PART_ERRORS = (JpkiError, ReaderError)


@dataclass(frozen=True)
class ReadOptions:
    """What to do on this tap.

    ``pin``: the user-auth PIN (enables the signature proof; an Android token
    needs it even to read the certificate). ``collation_b``: 照合番号B keyed from
    the card face: opens the four attributes. ``attributes_with_pin``: open them
    with the PIN instead (the text AP has its own PIN, usually the same digits).
    ``trust``: ``None`` skips the chain checks (diagnostics only: the certificate
    is then ``not_checked`` and the attributes ``not_verified``).
    ``read_photo``: with ``collation_b``, also read the holder's photo from the visual AP.

    A malformed PIN or 照合番号B raises ``InvalidPinFormat`` / ``InvalidCollationNumber``
    here, before any card is touched.
    """

    trust: TrustStore | None = None
    revocation: RevocationSnapshot | None = None
    pin: str | None = field(default=None, repr=False)
    collation_b: str | None = field(default=None, repr=False)
    attributes_with_pin: bool = False
    allow_last_try: bool = False
    challenge: bytes | None = None
    now: datetime | None = None
    read_photo: bool = False
    # Called with a step name ("token", "certificate", "signature", "attributes", "photo")
    # as each one completes: a touchscreen can show progress. Never given card data.
    on_step: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        # A malformed entry is refused before the card is touched (nothing is sent).
        if self.pin is not None:
            check_pin_format(self.pin, InvalidPinFormat)
        if self.collation_b is not None:
            check_collation_b(self.collation_b)


@dataclass(frozen=True)
class CertificateSummary:
    """What the device keeps of the certificate. ``subject`` only lives here, never in logs."""

    serial: int
    subject: str = field(repr=False)
    not_after_jst: str
    sha256: str
    der: bytes = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "serial": f"{self.serial:X}",
            "subject": self.subject,
            "not_after": self.not_after_jst,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Proof:
    """A signature by the card over a host challenge, verified (chain included)."""

    kind: str  # "auth_key" (JPKI PIN) or "card_presence" (text AP key)
    challenge: bytes
    signature: bytes = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "verified": True,
            "challenge": self.challenge.hex(),
            "signature_sha256": hashlib.sha256(self.signature).hexdigest(),
        }


@dataclass(frozen=True)
class CardReadResult:
    """One tap's read, part by part.

    ``attributes`` holds the values when they may be shown: verified, or
    ``not_verified`` (shown marked as such); it is ``None`` when tampered,
    failed or not requested. ``proofs`` lists only verified proofs.
    """

    token_type: TokenType
    token_label: str
    certificate: CertificateSummary
    certificate_check: CertificateCheck
    pin_proof: Check
    attributes: Attributes | None = field(repr=False)
    attributes_check: Check
    card_presence: Check
    face: FaceRecord | None = field(repr=False)
    photo: Check
    proofs: tuple[Proof, ...]
    apdus: int
    bytes_sent: int
    bytes_received: int

    @property
    def verdict(self) -> Verdict | None:
        """The device's trust verdict, when the certificate is trusted on the device."""
        return self.certificate_check.verdict

    @property
    def attributes_integrity(self) -> bool:
        """True only when the attributes are verified (hash, signature, pinned CA key)."""
        return self.attributes_check.verified

    def proof(self, kind: str) -> Proof | None:
        """The verified proof of ``kind`` ("auth_key", "card_presence"), if any."""
        return next((p for p in self.proofs if p.kind == kind), None)

    @property
    def complete(self) -> bool:
        """Every part that was asked for is verified (the certificate trusted)."""
        parts = (self.pin_proof, self.attributes_check, self.card_presence)
        return (
            self.certificate_check.trusted
            and all(p.verified for p in parts if p.requested)
            and self.photo.status in (CheckStatus.READ, CheckStatus.NOT_REQUESTED)
        )

    @property
    def tampered(self) -> bool:
        """Some part was proved wrong and refused."""
        parts = (self.pin_proof, self.attributes_check, self.card_presence)
        return any(p.status is CheckStatus.TAMPERED for p in parts)

    def first_error(self) -> KyukyuError | None:
        """The most important reason the read is not complete (tampered first)."""
        parts = (self.attributes_check, self.card_presence, self.pin_proof)
        for p in parts:
            if p.status is CheckStatus.TAMPERED:
                return p.error
        if not self.certificate_check.trusted and self.certificate_check.error is not None:
            return self.certificate_check.error
        for p in (*parts, self.photo):
            if p.error is not None:
                return p.error
        return None

    def to_dict(self) -> dict[str, object]:
        show = self.attributes is not None
        return {
            "token_type": self.token_type.value,
            "token_label": self.token_label,
            "certificate": {**self.certificate.to_dict(), **self.certificate_check.to_dict()},
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "pin_proof": _proof_dict(self.pin_proof, self.proof("auth_key")),
            "attributes": {
                **self.attributes_check.to_dict(),
                "values": self.attributes.to_dict() if show and self.attributes else None,
            },
            "card_presence": _proof_dict(self.card_presence, self.proof("card_presence")),
            "photo": {
                **self.photo.to_dict(),
                **({} if self.face is None else _photo_dict(self.face)),
            },
            "attributes_integrity": self.attributes_integrity,
            "proof_of_possession": [p.to_dict() for p in self.proofs],
            "apdus": self.apdus,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        }


def _proof_dict(check: Check, proof: Proof | None) -> dict[str, object]:
    out = check.to_dict()
    if proof is not None:
        out["challenge"] = proof.challenge.hex()
        out["signature_sha256"] = hashlib.sha256(proof.signature).hexdigest()
    return out


def _photo_dict(face: FaceRecord) -> dict[str, object]:
    return {
        "format": "jpeg2000" if face.photo_is_jpeg2000 else "unknown",
        "bytes": len(face.photo),
        "sha256": hashlib.sha256(face.photo).hexdigest(),
        "base64": base64.b64encode(face.photo).decode("ascii"),
    }


def summarize(der: bytes) -> CertificateSummary:
    cert = x509.load_der_x509_certificate(der)
    return CertificateSummary(
        serial=cert.serial_number,
        subject=cert.subject.rfc4514_string(),
        not_after_jst=cert.not_valid_after_utc.astimezone(JST).isoformat(),
        sha256=hashlib.sha256(der).hexdigest(),
        der=der,
    )


def _step(opts: ReadOptions, step: str, message: str, *args: object) -> None:
    log.debug(message, *args)
    if opts.on_step is not None:
        opts.on_step(step)


def _failed(exc: KyukyuError) -> Check:
    if isinstance(exc, Cancelled):
        raise exc
    return Check(CheckStatus.FAILED, exc)


def _check_certificate(jpki: JpkiSession, opts: ReadOptions) -> CertificateCheck:
    if opts.trust is None:
        return CertificateCheck(CertificateStatus.NOT_CHECKED)
    try:
        verdict = verify_auth_certificate(
            jpki.auth_certificate, opts.trust, now=opts.now, revocation=opts.revocation
        )
    except UntrustedIssuer as exc:
        return CertificateCheck(CertificateStatus.NOT_VERIFIED_ON_DEVICE, error=exc)
    except TrustError as exc:
        return CertificateCheck(CertificateStatus.UNTRUSTED, error=exc)
    return CertificateCheck(CertificateStatus.TRUSTED, verdict=verdict)


def _prove_pin(jpki: JpkiSession, opts: ReadOptions) -> tuple[Check, Proof | None]:
    if opts.pin is None:
        return NOT_REQUESTED, None
    try:
        if not jpki.logged_in:
            jpki.verify_auth_pin(opts.pin, allow_last_try=opts.allow_last_try)
        challenge = opts.challenge or os.urandom(_CHALLENGE_BYTES)
        proof = Proof("auth_key", challenge, jpki.sign_with_auth_key(challenge))
    except _PART_ERRORS as exc:
        return _failed(exc), None
    return Check(CheckStatus.VERIFIED), proof


@dataclass
class _TextOutcome:
    attributes: Attributes | None = None
    check: Check = NOT_REQUESTED
    presence: Check = NOT_REQUESTED
    proof: Proof | None = None


def _open_text_ap(channel: ApduChannel, opts: ReadOptions, pin_check: Check) -> _TextOutcome:
    with_pin = opts.attributes_with_pin and opts.pin is not None
    if opts.collation_b is None and not with_pin:
        return _TextOutcome()
    if opts.collation_b is None and isinstance(pin_check.error, PinError):
        # The JPKI AP refused this PIN: do not spend a try of the text AP's own PIN on it.
        skipped = _failed(PinNotTried("the JPKI AP refused the PIN"))
        return _TextOutcome(check=skipped, presence=skipped)
    text = TextSession(channel)
    try:
        text.select()
        if opts.collation_b is not None:
            text.unlock_with_collation_b(opts.collation_b, allow_last_try=opts.allow_last_try)
        else:
            assert opts.pin is not None
            text.unlock_with_pin(opts.pin, allow_last_try=opts.allow_last_try)
        raw = text.read_attributes_raw()
        attributes = parse_attributes(raw)
    except _PART_ERRORS as exc:
        failed = _failed(exc)
        return _TextOutcome(check=failed, presence=failed)
    out = _TextOutcome(attributes=attributes)
    chain = _issuer_chain(text, opts)
    out.check = _verify_attributes(text, raw, chain)
    if out.check.status in (CheckStatus.TAMPERED, CheckStatus.FAILED):
        out.attributes = None  # refused: never shown
    out.presence, out.proof = _prove_presence(text, chain)
    return out


def _issuer_chain(text: TextSession, opts: ReadOptions) -> Check:
    """EF 0004 against the CA keys pinned by key id: the root of the text AP's chain."""
    if opts.trust is None:
        return Check(CheckStatus.NOT_VERIFIED, NoTrustAnchors("no trust store given"))
    try:
        verify_text_ap_issuer(text.read_issuer_certificate(), opts.trust)
    except CvcCaNotPinned as exc:
        return Check(CheckStatus.NOT_VERIFIED, exc)
    except IntegrityError as exc:
        return Check(CheckStatus.TAMPERED, exc)
    except _PART_ERRORS as exc:
        return _failed(exc)
    return Check(CheckStatus.VERIFIED)


def _verify_attributes(text: TextSession, raw: bytes, chain: Check) -> Check:
    """DF32 over DF22-DF25, DF33 under the EF 0004 key, then the chain of EF 0004."""
    try:
        text.verify_integrity(raw)
    except IntegrityError as exc:
        return Check(CheckStatus.TAMPERED, exc)
    except _PART_ERRORS as exc:
        return _failed(exc)
    return chain


def _prove_presence(text: TextSession, chain: Check) -> tuple[Check, Proof | None]:
    """The card's signature under EF 0007's key, EF 0007 under EF 0004's, then the chain."""
    challenge = os.urandom(_CHALLENGE_BYTES)
    try:
        signature = text.prove_presence(challenge)
        text.verify_card_key_chain()
    except (BadSignature, IntegrityError) as exc:
        return Check(CheckStatus.TAMPERED, exc), None
    except _PART_ERRORS as exc:
        return _failed(exc), None
    if not chain.verified:
        return chain, None
    return Check(CheckStatus.VERIFIED), Proof("card_presence", challenge, signature)


def _read_photo(channel: ApduChannel, opts: ReadOptions) -> tuple[Check, FaceRecord | None]:
    if not opts.read_photo or opts.collation_b is None:
        return NOT_REQUESTED, None
    try:
        visual = VisualSession(channel)
        visual.select()
        visual.unlock_with_collation_b(opts.collation_b, allow_last_try=opts.allow_last_try)
        face = visual.read_face()
    except _PART_ERRORS as exc:
        return _failed(exc), None
    return Check(CheckStatus.READ), face


def read_card(channel: ApduChannel, options: ReadOptions | None = None) -> CardReadResult:
    """Read one tap: token, certificate (checked), then the optional parts.

    Raises only when no certificate could be read (``NotMyNumberCard``,
    ``UnknownToken``, ``PinRequired`` / ``WrongPin`` on an Android token whose
    certificate needs the PIN, ``MalformedCertificate``, ``CardRemoved`` ...) or on
    ``Cancelled``. Everything after that is recorded per part in the result:
    check ``result.certificate_check.trusted`` before using the certificate for the
    summary, and ``result.attributes_check`` before showing attributes as verified.
    """
    opts = options or ReadOptions()
    jpki = JpkiSession(channel)
    jpki.select()
    info = jpki.token_info()
    _step(opts, "token", "token type %s", info.token_type.value)

    if info.token_type is TokenType.ANDROID:
        # The smartphone credential hides its certificate behind the PIN.
        if opts.pin is None:
            raise PinRequired("Android token without PIN")
        jpki.verify_auth_pin(opts.pin, allow_last_try=opts.allow_last_try)
    der = jpki.read_auth_certificate()
    cert_check = _check_certificate(jpki, opts)
    _step(opts, "certificate", "certificate read, check: %s", cert_check.status.value)

    pin_check, pin_proof = _prove_pin(jpki, opts)
    if pin_check.requested:
        _step(opts, "signature", "auth key signature: %s", pin_check.status.value)

    text = _open_text_ap(channel, opts, pin_check)
    if text.check.requested:
        _step(opts, "attributes", "attributes: %s", text.check.status.value)

    photo_check, face = _read_photo(channel, opts)
    if photo_check.requested:
        _step(opts, "photo", "face record: %s", photo_check.status.value)

    stats = channel.stats
    proofs = tuple(p for p in (pin_proof, text.proof) if p is not None)
    return CardReadResult(
        token_type=info.token_type,
        token_label=info.label,
        certificate=summarize(der),
        certificate_check=cert_check,
        pin_proof=pin_check,
        attributes=text.attributes,
        attributes_check=text.check,
        card_presence=text.presence,
        face=face,
        photo=photo_check,
        proofs=proofs,
        apdus=stats.apdus,
        bytes_sent=stats.bytes_sent,
        bytes_received=stats.bytes_received,
    )
