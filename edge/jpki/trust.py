"""Certificate trust: pinned J-LIS roots, chain by signature, validity in JST, usage, policy,
revocation; and the text AP's card-verifiable certificates, by pinned CA key id.

Trust comes from pinned fingerprints only. The roots themselves are installed
by a technician (``TrustStore.from_directory``) and each one must match a pin;
J-LIS's published 2015 and 2023 roots ship with the package (``edge.jpki.bundled``,
checked against these same pins whenever they are read). A generated root (the
test CA, J-LIS's ``O=JPKI-TEST``) is accepted only when the device is explicitly
in test mode. The CA certificates on the card (EF 000B, 0002) are never used.
All root generations share one subject DN, so the issuer is chosen by verifying
the signature, not by name.

The text AP's EF 0004 is a card-verifiable certificate whose CA key is not on
the card: production CA keys are pinned here by key id (``PINNED_CVC_CA_KEYS``);
a roots directory may add CVC CA keys as ``cvc-ca-<key id as 32 hex digits>.pem``
(a PEM SubjectPublicKeyInfo), and any key id that is not a pinned production one
is a test key, accepted in test mode only.

Pins grow without a release in two ways, never by a file a device reads on its
own: the platform's operator lists extra pins in ``pins.json`` of the platform's
roots directory (``from_directory(..., operator_pins=True)``, the hub only), and a
device adds the entries of a trust bundle the platform signed
(``TrustStore.extended``; see ``edge.trust_bundle``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from ._cvc import (
    PINNED_CVC_CA_KEYS,
    CardVerifiableCertificate,
    CvcCaKey,
    cvc_ca_key,
    cvc_ca_key_from_pem,
)
from ._errors import (
    BadSignature,
    CvcCaNotPinned,
    CvcSignatureInvalid,
    Expired,
    MalformedCertificate,
    MalformedData,
    NoTrustAnchors,
    NotYetValid,
    Revoked,
    TestRootRefused,
    UntrustedIssuer,
    WrongExtendedKeyUsage,
    WrongKeyUsage,
    WrongPolicy,
)
from ._jpki import load_certificate
from .revocation import RevocationSnapshot

__all__ = [
    "AUTH_POLICY_OID",
    "JST",
    "PINNED_CVC_CA_KEYS",
    "PINNED_ROOTS",
    "PINS_FILE",
    "CvcCaKey",
    "OperatorPins",
    "PinnedRoot",
    "TrustAnchor",
    "TrustStore",
    "Verdict",
    "cvc_ca_key",
    "cvc_ca_key_from_pem",
    "fingerprint",
    "read_operator_pins",
    "verify_auth_certificate",
    "verify_text_ap_issuer",
]

JST = timezone(timedelta(hours=9), "JST")
# 利用者証明用電子証明書 policy (docs/jpki-card.md, "Certificates").
AUTH_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")

Purpose = Literal["auth", "sign", "test"]


@dataclass(frozen=True)
class PinnedRoot:
    """A production root, known by the SHA-256 of its DER."""

    name: str
    purpose: Purpose
    not_after: date
    sha256: str


# The root table of docs/jpki-card.md ("Certificates"). The 2019 signing root's
# fingerprint is stated by three independent public repositories citing J-LIS's
# sign_fingerprint.pdf; the 2019 user-authentication root's fingerprint is not available
# here (a trust bundle from the platform can add it, and a certificate under it is
# checked by the platform meanwhile).
PINNED_ROOTS: Mapping[str, PinnedRoot] = {
    r.sha256: r
    for r in (
        PinnedRoot(
            "auth-2015",
            "auth",
            date(2025, 10, 19),
            "4DCFC4CA0AAF9FB2A3081B3F0C991C320B3ACC008667A341EEAEC5AF1D58CA7D",
        ),
        PinnedRoot(
            "auth-2023",
            "auth",
            date(2033, 7, 15),
            "64114F29620C24ED2631D46476A040E7EE740D956089C00B036A6A8118C322B5",
        ),
        PinnedRoot(
            "sign-2015",
            "sign",
            date(2025, 10, 19),
            "19645405A1FE14377434BD55957628AC4038557C542403A2243F21C706FC9355",
        ),
        PinnedRoot(
            "sign-2019",
            "sign",
            date(2029, 9, 14),
            "79679C33E4CC9319440F1AD120A597FF1844E2EF217063ADB176966FD5E6FBEB",
        ),
        PinnedRoot(
            "sign-2023",
            "sign",
            date(2033, 7, 15),
            "D227F6CDE11D35C5252178F106F843D24651944975413B539FA2FB68DBFA365F",
        ),
    )
}

_DER = Encoding.DER
_CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_CVC_CA_FILE = re.compile(r"cvc-ca-([0-9A-Fa-f]{32})\.pem")
PINS_FILE = "pins.json"


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, upper-case hex (the pin format)."""
    return hashlib.sha256(der).hexdigest().upper()


@dataclass(frozen=True)
class TrustAnchor:
    """A root the device trusts: pinned, or a test root in test mode."""

    certificate: x509.Certificate
    sha256: str
    name: str
    purpose: Purpose

    @property
    def test(self) -> bool:
        return self.purpose == "test"


class TrustStore:
    """The roots this device trusts (production pins, plus test roots in test mode).

    ``cvc_keys``: CA keys for the text AP's EF 0004, by key id. The pinned
    production keys are always in; test keys (any other key id) need test mode.
    """

    def __init__(
        self,
        anchors: Iterable[TrustAnchor],
        *,
        allow_test_roots: bool = False,
        cvc_keys: Iterable[CvcCaKey] = (),
    ) -> None:
        self.anchors = tuple(anchors)
        self.allow_test_roots = allow_test_roots
        if not allow_test_roots and any(a.test for a in self.anchors):
            raise TestRootRefused("test anchor in a production store")
        keys = dict(PINNED_CVC_CA_KEYS)
        for k in cvc_keys:
            if k.test and not allow_test_roots:
                raise TestRootRefused(f"CVC CA key {k.key_id_hex} is not pinned")
            keys[k.key_id] = k
        self.cvc_keys: Mapping[bytes, CvcCaKey] = keys

    def extended(
        self, anchors: Iterable[TrustAnchor] = (), cvc_keys: Iterable[CvcCaKey] = ()
    ) -> TrustStore:
        """A new store with more anchors and CVC CA keys (a platform-signed trust bundle's)."""
        merged = {a.sha256: a for a in self.anchors}
        merged.update({a.sha256: a for a in anchors})
        keys = [*self.cvc_keys.values(), *cvc_keys]
        return TrustStore(merged.values(), allow_test_roots=self.allow_test_roots, cvc_keys=keys)

    @classmethod
    def from_certificates(
        cls,
        certs: Iterable[x509.Certificate | bytes],
        *,
        allow_test_roots: bool = False,
        cvc_keys: Iterable[CvcCaKey] = (),
        extra_pins: Iterable[PinnedRoot] = (),
    ) -> TrustStore:
        """Build a store; every root must match a pin (built in, or ``extra_pins``) unless
        ``allow_test_roots``."""
        pins = {**PINNED_ROOTS, **{p.sha256: p for p in extra_pins}}
        anchors: dict[str, TrustAnchor] = {}
        for item in certs:
            cert = item if isinstance(item, x509.Certificate) else load_certificate(item)
            der = cert.public_bytes(_DER)
            fp = fingerprint(der)
            pinned = pins.get(fp)
            if pinned is not None:
                anchors[fp] = TrustAnchor(cert, fp, pinned.name, pinned.purpose)
            elif allow_test_roots:
                anchors[fp] = TrustAnchor(cert, fp, f"test-{fp[:16]}", "test")
            else:
                raise TestRootRefused(f"root {fp} is not pinned")
        return cls(anchors.values(), allow_test_roots=allow_test_roots, cvc_keys=cvc_keys)

    @classmethod
    def from_directory(
        cls,
        path: str | os.PathLike[str],
        *,
        allow_test_roots: bool = False,
        operator_pins: bool = False,
    ) -> TrustStore:
        """Load every PEM/DER certificate in ``path`` (``.pem .crt .cer .der``), and the
        CVC CA keys named ``cvc-ca-<key id hex>.pem``.

        ``operator_pins`` (the platform only): also honour ``pins.json`` in ``path``, the
        operator's extra pins (``read_operator_pins``).
        """
        d = Path(path)
        if not d.is_dir():
            raise NoTrustAnchors(f"{d} is not a directory")
        extra: list[PinnedRoot] = []
        extra_cvc: frozenset[bytes] = frozenset()
        if operator_pins and (d / PINS_FILE).is_file():
            pins = read_operator_pins((d / PINS_FILE).read_bytes())
            extra, extra_cvc = pins.roots, pins.cvc_key_ids
        certs: list[bytes] = []
        cvc_keys: list[CvcCaKey] = []
        for f in sorted(d.iterdir()):
            if f.suffix.lower() not in _CERT_SUFFIXES or not f.is_file():
                continue
            m = _CVC_CA_FILE.fullmatch(f.name)
            if m is not None:
                key = cvc_ca_key_from_pem(bytes.fromhex(m.group(1)), f.read_bytes())
                if key.key_id in extra_cvc:
                    key = dataclasses.replace(key, test=False, name=f"operator-{key.key_id_hex}")
                cvc_keys.append(key)
                continue
            certs.extend(_read_certificates(f.read_bytes()))
        if not certs:
            raise NoTrustAnchors(f"no certificate in {d}")
        return cls.from_certificates(
            certs, allow_test_roots=allow_test_roots, cvc_keys=cvc_keys, extra_pins=extra
        )

    def for_purposes(self, *purposes: Purpose) -> list[TrustAnchor]:
        return [a for a in self.anchors if a.purpose in purposes or a.test]


@dataclass(frozen=True)
class OperatorPins:
    """``pins.json`` of the platform's roots directory: what its operator added."""

    version: int
    roots: list[PinnedRoot]
    cvc_key_ids: frozenset[bytes]


def read_operator_pins(data: bytes) -> OperatorPins:
    """Parse ``{"version": N, "roots": [{name, purpose, sha256, not_after}],
    "cvc_ca_keys": [{"key_id": <32 hex>}]}``; ``MalformedData`` otherwise.

    ``version`` numbers the platform's trust bundle (it only grows).
    """
    try:
        doc = json.loads(data)
        version = doc.get("version", 0)
        if type(version) is not int or version < 0:
            raise ValueError("version")
        roots = [
            PinnedRoot(
                str(r["name"]),
                _purpose(r["purpose"]),
                date.fromisoformat(r["not_after"]),
                _sha256_hex(r["sha256"]),
            )
            for r in doc.get("roots", [])
        ]
        ids = frozenset(bytes.fromhex(k["key_id"]) for k in doc.get("cvc_ca_keys", []))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedData(f"{PINS_FILE} is not a pins file") from exc
    if any(len(i) != 16 for i in ids):
        raise MalformedData("a CVC CA key id is not 16 bytes")
    return OperatorPins(version, roots, ids)


def _purpose(value: object) -> Purpose:
    if value == "auth":
        return "auth"
    if value == "sign":
        return "sign"
    raise ValueError("purpose")


def _sha256_hex(value: object) -> str:
    text = str(value).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", text):
        raise ValueError("sha256")
    return text


def _read_certificates(data: bytes) -> list[bytes]:
    if _PEM_BEGIN not in data:
        return [data]
    try:
        return [c.public_bytes(_DER) for c in x509.load_pem_x509_certificates(data)]
    except ValueError as exc:
        raise MalformedCertificate("unreadable PEM root") from exc


@dataclass(frozen=True)
class Verdict:
    """The outcome of a successful check (failures raise a ``TrustError``)."""

    trusted: bool
    root: str
    root_sha256: str
    test_root: bool
    serial: int
    not_after_jst: str
    checked_at_jst: str
    revocation_checked: bool
    revocation_sequence: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "trusted": self.trusted,
            "root": self.root,
            "root_sha256": self.root_sha256,
            "test_root": self.test_root,
            "not_after": self.not_after_jst,
            "checked_at": self.checked_at_jst,
            "revocation_checked": self.revocation_checked,
            "revocation_sequence": self.revocation_sequence,
        }


def _signed_by(cert: x509.Certificate, anchor: TrustAnchor) -> bool:
    """Whether ``anchor`` signed ``cert`` (RSA PKCS#1 v1.5). Anything that cannot be
    verified is "not signed by it": a signature algorithm cryptography parses but does
    not know (``signature_hash_algorithm`` raises), one without a hash (Ed25519, Ed448),
    RSA-PSS (not PKCS#1 v1.5: the signature does not verify), a hash the backend
    refuses."""
    try:
        key = anchor.certificate.public_key()
        algorithm = cert.signature_hash_algorithm
        if not isinstance(key, rsa.RSAPublicKey) or algorithm is None:
            return False
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _issuer(cert: x509.Certificate, anchors: list[TrustAnchor]) -> TrustAnchor:
    if not anchors:
        raise NoTrustAnchors("no root for this purpose in the store")
    for anchor in anchors:
        if _signed_by(cert, anchor):
            return anchor
    raise UntrustedIssuer("no trusted root verifies the signature")


def _check_validity(cert: x509.Certificate, anchor: TrustAnchor, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise NotYetValid(f"valid from {cert.not_valid_before_utc.astimezone(JST).isoformat()}")
    if now > cert.not_valid_after_utc:
        raise Expired(f"expired {cert.not_valid_after_utc.astimezone(JST).isoformat()}")
    if now > anchor.certificate.not_valid_after_utc:
        raise Expired(f"root {anchor.name} expired")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # duplicate or undecodable extension
        raise MalformedCertificate("bad extension") from exc


def _check_auth_usage(cert: x509.Certificate) -> None:
    ku = _extension(cert, x509.KeyUsage)
    if not isinstance(ku, x509.KeyUsage) or not ku.digital_signature:
        raise WrongKeyUsage()
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if not isinstance(eku, x509.ExtendedKeyUsage) or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise WrongExtendedKeyUsage()
    policies = _extension(cert, x509.CertificatePolicies)
    if not isinstance(policies, x509.CertificatePolicies) or not any(
        p.policy_identifier == AUTH_POLICY_OID for p in policies
    ):
        raise WrongPolicy()


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def verify_auth_certificate(
    der: bytes | x509.Certificate,
    store: TrustStore,
    *,
    now: datetime | None = None,
    revocation: RevocationSnapshot | None = None,
) -> Verdict:
    """Check a user-authentication certificate offline; raise a ``TrustError`` if it fails.

    Order: parse, issuer (signature against each auth root), validity (JST),
    key usage digitalSignature, EKU clientAuth, policy ``1.2.392.200149.8.5.1.3.30``,
    revocation snapshot.
    """
    cert = der if isinstance(der, x509.Certificate) else load_certificate(der)
    t = _now(now)
    anchor = _issuer(cert, store.for_purposes("auth"))
    _check_validity(cert, anchor, t)
    _check_auth_usage(cert)
    serial = cert.serial_number
    if revocation is not None and serial in revocation:
        raise Revoked()
    return Verdict(
        trusted=True,
        root=anchor.name,
        root_sha256=anchor.sha256,
        test_root=anchor.test,
        serial=serial,
        not_after_jst=cert.not_valid_after_utc.astimezone(JST).isoformat(),
        checked_at_jst=t.astimezone(JST).isoformat(timespec="seconds"),
        revocation_checked=revocation is not None,
        revocation_sequence=None if revocation is None else revocation.sequence,
    )


def verify_text_ap_issuer(cvc: CardVerifiableCertificate, store: TrustStore) -> CvcCaKey:
    """Check EF 0004 (the issuer key's CVC) against the CA keys pinned by key id.

    Raises ``CvcCaNotPinned`` (a ``TrustError``: the attributes can be shown, marked
    not verified) when its CA key id is not in the store, and ``CvcSignatureInvalid``
    (an ``IntegrityError``: tampered, refused) when a pinned CA key does not verify it.
    """
    ca = store.cvc_keys.get(cvc.ca_key_id)
    if ca is None:
        raise CvcCaNotPinned(f"CA key id {cvc.ca_key_id.hex().upper()}")
    try:
        cvc.verify_under(ca.public_key)
    except BadSignature as exc:
        raise CvcSignatureInvalid(f"under {ca.name}") from exc
    return ca
