"""Patient certificates: the hub verifies them itself (it never trusts the device's verdict).

Uses ``edge.jpki.trust`` (TrustStore + verify_auth_certificate) when it is installed;
otherwise a built-in verifier with the same checks: chain to a root in the trust
directory (issuer found by signature), validity, KeyUsage digitalSignature, the
JPKI user-authentication policy, revocation, and test roots only in test mode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from hub_server.core.errors import InvalidInput, NotAuthenticated, Unavailable

__all__ = [
    "AUTH_POLICY_OID",
    "CertificateVerifier",
    "PatientCertificate",
    "verify_card_signature",
]

AUTH_POLICY_OID = "1.2.392.200149.8.5.1.3.30"
PINNED_AUTH_ROOTS = frozenset(
    {
        "4DCFC4CA0AAF9FB2A3081B3F0C991C320B3ACC008667A341EEAEC5AF1D58CA7D",
        "64114F29620C24ED2631D46476A040E7EE740D956089C00B036A6A8118C322B5",
    }
)


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


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            algo = cert.signature_hash_algorithm
            if algo is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            algo = cert.signature_hash_algorithm
            if algo is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algo))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _load_roots(directory: Path) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                roots.extend(x509.load_pem_x509_certificates(data))
            else:
                roots.append(x509.load_der_x509_certificate(data))
        except ValueError:
            continue
    return roots


_UNUSABLE = object()


class CertificateVerifier:
    """Verifies patient user-authentication certificates against the hub's trust roots."""

    def __init__(
        self,
        trust_roots_dir: Path | None,
        *,
        allow_test_roots: bool,
        revoked_serials: Callable[[], Collection[int]] = frozenset,
    ) -> None:
        self._dir = trust_roots_dir
        self._allow_test = allow_test_roots
        self._revoked = revoked_serials
        self._jpki_store: Any = None
        self._roots: list[x509.Certificate] = []
        if trust_roots_dir is not None and trust_roots_dir.is_dir():
            self._jpki_store = _jpki_trust_store(trust_roots_dir, allow_test_roots)
            if self._jpki_store is None:
                self._roots = [
                    r
                    for r in _load_roots(trust_roots_dir)
                    if allow_test_roots or _fingerprint(r) in PINNED_AUTH_ROOTS
                ]

    @property
    def roots(self) -> list[x509.Certificate]:
        """Roots that may sign CRLs (the built-in verifier's, or all in the directory)."""
        if self._roots or self._dir is None or not self._dir.is_dir():
            return self._roots
        return _load_roots(self._dir)

    def verify(self, der: bytes, *, now: datetime | None = None) -> PatientCertificate:
        """Verify ``der``; raise ``InvalidInput`` with a clear code when it is not acceptable
        (``Unavailable`` when the hub has no usable trust roots)."""
        cert = parse_certificate(der)
        when = now or datetime.now(UTC)
        revoked = self._revoked()
        if self._jpki_store is _UNUSABLE:
            raise Unavailable(
                "no_trust_roots",
                "the hub's trust roots are missing or not allowed (test roots outside test mode)",
                "サーバーに有効な信頼済みルート証明書がありません。",
            )
        if self._jpki_store is not None:
            _verify_with_jpki(der, self._jpki_store, when, revoked)
        else:
            self._verify_builtin(cert, when, revoked)
        return PatientCertificate(cert, cert.serial_number, _subject_cn(cert))

    def _verify_builtin(
        self, cert: x509.Certificate, now: datetime, revoked: Collection[int]
    ) -> None:
        if not self._roots:
            raise Unavailable(
                "no_trust_roots",
                "the hub has no trust roots configured",
                "サーバーに信頼済みルート証明書が設定されていません。",
            )
        if not any(_signed_by(cert, root) for root in self._roots):
            raise _cert_error(
                "untrusted_certificate",
                "the certificate does not chain to a trusted root",
                "証明書を検証できません(信頼できる発行者ではありません)。",
            )
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise _cert_error(
                "certificate_expired",
                "the certificate is outside its validity period",
                "証明書の有効期限外です。",
            )
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound:
            ku = None
            policies = None
        if ku is None or not ku.digital_signature:
            raise _cert_error(
                "wrong_certificate",
                "not a user-authentication certificate (key usage)",
                "利用者証明用電子証明書ではありません。",
            )
        oids = {p.policy_identifier.dotted_string for p in policies or []}
        if AUTH_POLICY_OID not in oids:
            raise _cert_error(
                "wrong_certificate",
                "not a user-authentication certificate (policy)",
                "利用者証明用電子証明書ではありません。",
            )
        if cert.serial_number in revoked:
            raise _cert_error(
                "certificate_revoked", "the certificate is revoked", "証明書は失効しています。"
            )


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def _jpki_trust_store(directory: Path, allow_test_roots: bool) -> Any:
    try:
        from edge.jpki import trust
    except ImportError:
        return None
    from_directory = getattr(getattr(trust, "TrustStore", None), "from_directory", None)
    if from_directory is None or not hasattr(trust, "verify_auth_certificate"):
        return None
    try:
        return from_directory(directory, allow_test_roots=allow_test_roots)
    except Exception as exc:  # TestRootRefused, NoTrustAnchors: no usable roots
        if getattr(exc, "code", None) is None:
            raise
        return _UNUSABLE


_SNAPSHOT_CACHE: dict[int, tuple[Collection[int], Any]] = {}


def _snapshot_for(revoked: Collection[int]) -> Any:
    """The jpki ``RevocationSnapshot`` of the hub's revoked set (rebuilt when the set changes)."""
    from edge.jpki.revocation import RevocationSnapshot

    hit = _SNAPSHOT_CACHE.get(id(revoked))
    if hit is not None and hit[0] is revoked:
        return hit[1]
    snap = RevocationSnapshot.from_serials(revoked)
    _SNAPSHOT_CACHE.clear()
    _SNAPSHOT_CACHE[id(revoked)] = (revoked, snap)
    return snap


def _verify_with_jpki(der: bytes, store: Any, now: datetime, revoked: Collection[int]) -> None:
    from edge.jpki import trust

    try:
        trust.verify_auth_certificate(der, store, now=now, revocation=_snapshot_for(revoked))
    except Exception as exc:
        code = getattr(exc, "code", None)
        if code is None:
            raise
        raise _cert_error(
            str(code),
            str(getattr(exc, "message_en", "the certificate is not acceptable")),
            str(getattr(exc, "message_ja", "証明書を検証できません。")),
        ) from None


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
