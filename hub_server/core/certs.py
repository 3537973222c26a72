"""Patient certificates: the hub verifies them itself (it never trusts the device's verdict).

One verifier for both ends: ``edge.jpki.trust`` (``TrustStore`` of pinned roots, test
roots only in test mode; ``verify_auth_certificate``: chain by signature, validity,
KeyUsage, EKU, the user-authentication policy, revocation). The same pinned
authentication roots are the only keys a CRL may be signed with (``crl_roots``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from edge.jpki import JpkiError
from edge.jpki.revocation import RevocationSnapshot
from edge.jpki.trust import TrustStore, verify_auth_certificate
from hub_server.core.errors import InvalidInput, NotAuthenticated, Unavailable

__all__ = [
    "CertificateVerifier",
    "PatientCertificate",
    "verify_card_signature",
]


def _cert_error(code: str, en: str, ja: str) -> InvalidInput:
    return InvalidInput(code, en, ja)


@dataclass(frozen=True)
class PatientCertificate:
    """A verified user-authentication certificate (no patient data beyond its opaque CN)."""

    certificate: x509.Certificate
    serial: int
    patient_key: str

    @property
    def patient_ref(self) -> str:
        """The pseudonym stored in the audit trail (never the CN itself)."""
        return hashlib.sha256(b"kyukyu-patient\n" + self.patient_key.encode()).hexdigest()


def parse_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise _cert_error(
            "malformed_certificate",
            "the certificate is not a DER X.509 certificate",
            "証明書の形式が正しくありません。カードを読み直してください。",
        ) from None


def _subject_cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        raise _cert_error(
            "bad_certificate", "the certificate has no subject CN", "証明書の内容が不正です。"
        )
    return str(attrs[0].value)


class CertificateVerifier:
    """Verifies patient user-authentication certificates with ``edge.jpki.trust``.

    ``trust_roots_dir`` is read once (``TrustStore.from_directory``: every root must
    match a pin unless ``allow_test_roots``); a missing, empty or refused directory
    leaves the hub without trust roots: every check is then ``Unavailable``
    (``no_trust_roots``) and no CRL can be ingested.
    """

    def __init__(
        self,
        trust_roots_dir: Path | None,
        *,
        allow_test_roots: bool,
        revoked_serials: Callable[[], Collection[int]] = frozenset,
    ) -> None:
        self._revoked = revoked_serials
        self.store: TrustStore | None = None
        self.problem = "the hub has no trust roots configured"
        if trust_roots_dir is not None:
            try:
                # pins.json: roots the operator added (a generation not pinned in code yet).
                self.store = TrustStore.from_directory(
                    trust_roots_dir, allow_test_roots=allow_test_roots, operator_pins=True
                )
            except JpkiError as exc:  # NoTrustAnchors, TestRootRefused, RootNotPinned
                self.problem = f"the hub's trust roots are not usable ({exc.code})"
        self._snapshot_lock = threading.Lock()
        self._snapshot: tuple[Collection[int], RevocationSnapshot] | None = None

    def crl_roots(self) -> list[x509.Certificate]:
        """The pinned (or, in test mode, test) authentication roots: who may sign a CRL."""
        if self.store is None:
            return []
        return [a.certificate for a in self.store.for_purposes("auth")]

    def _revocation(self) -> RevocationSnapshot:
        """The hub's revoked set as a jpki snapshot (rebuilt when the set changes)."""
        revoked = self._revoked()
        with self._snapshot_lock:
            if self._snapshot is not None and self._snapshot[0] is revoked:
                return self._snapshot[1]
            snap = RevocationSnapshot.from_serials(revoked)
            self._snapshot = (revoked, snap)
            return snap

    def verify(self, der: bytes, *, now: datetime | None = None) -> PatientCertificate:
        """Verify ``der``; raise ``InvalidInput`` with the trust check's code when it is not
        acceptable (``Unavailable`` when the hub has no usable trust roots)."""
        cert = parse_certificate(der)
        if self.store is None:
            raise Unavailable(
                "no_trust_roots",
                self.problem,
                "サーバーに有効な信頼済みルート証明書がありません。",
            )
        try:
            verify_auth_certificate(
                cert, self.store, now=now or datetime.now(UTC), revocation=self._revocation()
            )
        except JpkiError as exc:
            raise _cert_error(exc.code, exc.message_en, exc.message_ja) from None
        return PatientCertificate(cert, cert.serial_number, _subject_cn(cert))


def verify_card_signature(cert: PatientCertificate, message: bytes, signature: bytes) -> None:
    """Check the card's auth-key signature (PKCS#1 v1.5, SHA-256 DigestInfo) over ``message``."""
    key = cert.certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except (InvalidSignature, ValueError):
        raise NotAuthenticated(
            "bad_card_signature",
            "the card signature over the challenge does not verify",
            "カードの署名を確認できません。もう一度カードをタッチしてください。",
        ) from None
