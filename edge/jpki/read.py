"""The read-and-verify flow: one tap, one complete result or one typed error.

Used by ``kyukyu card read``, the demo and the UI. All or nothing: any error
raises, and no partial ``CardReadResult`` exists. Nothing here is logged
except step names: the subject, attributes and PIN stay in the returned
result only.
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

from edge.reader import ApduChannel

from ._constants import TokenType
from ._errors import PinRequired
from ._jpki import JpkiSession
from ._text import Attributes, TextSession, parse_attributes
from ._visual import FaceRecord, VisualSession
from .revocation import RevocationSnapshot
from .trust import JST, TrustStore, Verdict, verify_auth_certificate, verify_text_ap_certificate

__all__ = ["CardReadResult", "CertificateSummary", "ReadOptions", "read_card"]

log = logging.getLogger("edge.jpki.read")

_CHALLENGE_BYTES = 32


@dataclass(frozen=True)
class ReadOptions:
    """What to do on this tap.

    ``pin``: the user-auth PIN (enables the signature proof; an Android token
    needs it even to read the certificate). ``collation_b``: 照合番号B keyed from
    the card face: opens the four attributes. ``attributes_with_pin``: open them
    with the PIN instead (the text AP has its own PIN, usually the same digits).
    ``trust``: ``None`` skips the chain check (diagnostics only; the verdict is then None).
    ``read_photo``: with ``collation_b``, also read the holder's photo from the visual AP.
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
    """A signature by the card over a host challenge, checked against a certificate."""

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
    """A complete, verified read."""

    token_type: TokenType
    token_label: str
    certificate: CertificateSummary
    verdict: Verdict | None
    attributes: Attributes | None = field(repr=False)
    attributes_integrity: bool
    face: FaceRecord | None = field(repr=False)
    proofs: tuple[Proof, ...]
    apdus: int
    bytes_sent: int
    bytes_received: int

    def to_dict(self) -> dict[str, object]:
        return {
            "token_type": self.token_type.value,
            "token_label": self.token_label,
            "certificate": self.certificate.to_dict(),
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "attributes": None if self.attributes is None else self.attributes.to_dict(),
            "attributes_integrity": self.attributes_integrity,
            "photo": None if self.face is None else _photo_dict(self.face),
            "proof_of_possession": [p.to_dict() for p in self.proofs],
            "apdus": self.apdus,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        }


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


def read_card(channel: ApduChannel, options: ReadOptions | None = None) -> CardReadResult:
    """Select, detect the token, read and verify the auth certificate, and optionally
    prove the PIN and open the four attributes. Raises a typed error on any failure.
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
    verdict = None
    if opts.trust is not None:
        verdict = verify_auth_certificate(
            jpki.auth_certificate, opts.trust, now=opts.now, revocation=opts.revocation
        )
    _step(opts, "certificate", "certificate read and checked")

    proofs: list[Proof] = []
    if opts.pin is not None:
        if not jpki.logged_in:
            jpki.verify_auth_pin(opts.pin, allow_last_try=opts.allow_last_try)
        challenge = opts.challenge or os.urandom(_CHALLENGE_BYTES)
        proofs.append(Proof("auth_key", challenge, jpki.sign_with_auth_key(challenge)))
        _step(opts, "signature", "auth key signature verified")

    attributes: Attributes | None = None
    integrity = False
    if opts.collation_b is not None or (opts.attributes_with_pin and opts.pin is not None):
        text = TextSession(channel)
        text.select()
        if opts.collation_b is not None:
            text.unlock_with_collation_b(opts.collation_b, allow_last_try=opts.allow_last_try)
        else:
            assert opts.pin is not None
            text.unlock_with_pin(opts.pin, allow_last_try=opts.allow_last_try)
        raw = text.read_attributes_raw()
        attributes = parse_attributes(raw)
        text.verify_integrity(raw)
        if opts.trust is not None:
            verify_text_ap_certificate(text.read_certificate(), opts.trust, now=opts.now)
            integrity = True
        challenge = os.urandom(_CHALLENGE_BYTES)
        proofs.append(Proof("card_presence", challenge, text.prove_presence(challenge)))
        _step(opts, "attributes", "attributes read, integrity and card presence verified")

    face: FaceRecord | None = None
    if opts.read_photo and opts.collation_b is not None:
        visual = VisualSession(channel)
        visual.select()
        visual.unlock_with_collation_b(opts.collation_b, allow_last_try=opts.allow_last_try)
        face = visual.read_face()
        _step(opts, "photo", "face record read")

    stats = channel.stats
    return CardReadResult(
        token_type=info.token_type,
        token_label=info.label,
        certificate=summarize(der),
        verdict=verdict,
        attributes=attributes,
        attributes_integrity=integrity,
        face=face,
        proofs=tuple(proofs),
        apdus=stats.apdus,
        bytes_sent=stats.bytes_sent,
        bytes_received=stats.bytes_received,
    )
