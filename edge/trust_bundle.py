"""Trust pins that change without a release, and the platform's certificate check.

Two things the device asks the platform about trust (routes in
``hub_server/api/routes/trust.py``):

- **The trust bundle**: roots (by SHA-256 fingerprint, with the certificate) and
  CVC CA keys (by key id) the platform trusts, with their validity, in a document
  signed by the hub key. ``TrustBundleFile.accept`` takes one only when it verifies
  under the *pinned* hub key and its ``version`` is not lower than the last one
  accepted (never rolled back); ``apply_bundle`` adds its unexpired entries to the
  device's ``TrustStore``. Test entries need a device in test mode.
- **The certificate check**: a certificate whose issuer is not pinned on the device
  (``CertificateStatus.NOT_VERIFIED_ON_DEVICE``) is sent to the platform, which
  verifies it against its own roots. ``check_with_platform`` turns the signed answer
  into ``verified_by_platform`` (or ``untrusted`` with the platform's code); offline it
  keeps ``not_verified_on_device`` and the case goes on.

Errors: ``TrustBundleError`` (malformed, badly signed, test entries outside test
mode) and its ``TrustBundleRollback``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from edge.jpki import CertificateCheck, CertificateStatus, TrustError
from edge.jpki.read import CardReadResult
from edge.jpki.trust import CvcCaKey, TrustAnchor, TrustStore, fingerprint
from edge.settings import DeviceSettings
from errbase import KyukyuError
from sync import BadHubSignature, SyncError
from sync.signed import b64d, b64e_std, verify_document
from sync.signing import public_key_from_b64

__all__ = [
    "BUNDLE_FORMAT",
    "PlatformRefused",
    "TrustBundle",
    "TrustBundleError",
    "TrustBundleFile",
    "TrustBundleRollback",
    "apply_bundle",
    "check_with_platform",
    "device_trust_store",
    "fetch_trust_bundle",
    "parse_trust_bundle",
]

BUNDLE_FORMAT = "kyukyu-trust-bundle-v1"
log = logging.getLogger("edge.trust_bundle")
_FIELD = "trust_bundle"


class TrustBundleError(KyukyuError):
    code = "trust_bundle_invalid"
    message_ja = "信頼情報の更新を受け付けませんでした。技術担当者に連絡してください。"
    message_en = "The trust bundle was refused (malformed, not signed by the platform, or test)."


class TrustBundleRollback(TrustBundleError):
    code = "trust_bundle_rollback"
    message_ja = "古い信頼情報は受け付けません。"
    message_en = "The trust bundle is older than the one already accepted."


class PlatformRefused(TrustError):
    """The platform checked the certificate and refused it (``detail`` holds its code)."""

    code = "platform_refused_certificate"
    message_ja = "プラットフォームでの証明書確認の結果、この証明書は使えません。"
    message_en = "The platform checked the certificate and refused it."


class _Http(Protocol):
    def request_json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class PlatformLike(Protocol):
    """What ``sync.client.PlatformClient`` offers that this module uses."""

    hub_public_key: Ed25519PublicKey | None

    @property
    def http(self) -> _Http: ...


@dataclass(frozen=True)
class BundleRoot:
    name: str
    purpose: str
    sha256: str
    not_after: date
    test: bool
    certificate: x509.Certificate = field(repr=False)


@dataclass(frozen=True)
class TrustBundle:
    """A verified trust bundle (see the module docstring)."""

    version: int
    issued_at: str
    roots: tuple[BundleRoot, ...]
    cvc_keys: tuple[tuple[CvcCaKey, date | None], ...]


def _date(value: object) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def parse_trust_bundle(
    document: Mapping[str, Any], hub_key: Ed25519PublicKey, *, allow_test: bool = False
) -> TrustBundle:
    """Verify ``document`` under the pinned ``hub_key`` and parse it; ``TrustBundleError``."""
    try:
        body = verify_document(document, _FIELD, hub_key)
    except BadHubSignature as exc:
        raise TrustBundleError("not signed by the pinned hub key") from exc
    try:
        if body["format"] != BUNDLE_FORMAT:
            raise ValueError("format")
        version = body["version"]
        if type(version) is not int or version < 0:
            raise ValueError("version")
        roots = []
        for r in body["roots"]:
            der = b64d(r["certificate"])
            cert = x509.load_der_x509_certificate(der)
            # The platform lists its test roots with purpose "test" (and test: true).
            purpose_ok = r["purpose"] in ("auth", "sign") or (
                r["purpose"] == "test" and r["test"] is True
            )
            if fingerprint(der) != str(r["sha256"]).upper() or not purpose_ok:
                raise ValueError("root entry")
            not_after = _date(r["not_after"])
            assert not_after is not None
            roots.append(
                BundleRoot(
                    r["name"], r["purpose"], fingerprint(der), not_after, bool(r["test"]), cert
                )
            )
        keys = []
        for k in body["cvc_ca_keys"]:
            key = load_der_public_key(b64d(k["public_key"]))
            key_id = bytes.fromhex(k["key_id"])
            if not isinstance(key, rsa.RSAPublicKey) or len(key_id) != 16:
                raise ValueError("CVC CA key entry")
            ca_key = CvcCaKey(str(k["name"]), key_id, key, test=bool(k["test"]))
            keys.append((ca_key, _date(k.get("not_after"))))
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise TrustBundleError("malformed trust bundle") from exc
    if not allow_test and (any(r.test for r in roots) or any(k.test for k, _ in keys)):
        raise TrustBundleError("test entries in a bundle for a production device")
    return TrustBundle(version, str(body.get("issued_at", "")), tuple(roots), tuple(keys))


def apply_bundle(
    store: TrustStore, bundle: TrustBundle | None, *, now: datetime | None = None
) -> TrustStore:
    """``store`` plus the bundle's entries that are still valid on ``now``."""
    if bundle is None:
        return store
    today = (now or datetime.now(UTC)).date()
    anchors = [
        TrustAnchor(r.certificate, r.sha256, r.name, "test" if r.test else r.purpose)  # type: ignore[arg-type]
        for r in bundle.roots
        if r.not_after >= today and (store.allow_test_roots or not r.test)
    ]
    keys = [
        k
        for k, not_after in bundle.cvc_keys
        if (not_after is None or not_after >= today) and (store.allow_test_roots or not k.test)
    ]
    return store.extended(anchors, keys)


class TrustBundleFile:
    """The last accepted bundle, kept on the device (a signed public document: no secrets).

    ``accept`` never lets ``version`` go down; the file is replaced atomically.
    """

    def __init__(self, path: str | os.PathLike[str], hub_key: Ed25519PublicKey) -> None:
        self.path = Path(path)
        self.hub_key = hub_key

    def load(self, *, allow_test: bool = False) -> TrustBundle | None:
        """The stored bundle, re-verified under the pinned hub key (None if there is none)."""
        if not self.path.exists():
            return None
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrustBundleError("the stored trust bundle is unreadable") from exc
        return parse_trust_bundle(document, self.hub_key, allow_test=allow_test)

    @property
    def version(self) -> int:
        bundle = self.load(allow_test=True)
        return -1 if bundle is None else bundle.version

    def accept(self, document: Mapping[str, Any], *, allow_test: bool = False) -> TrustBundle:
        """Verify and keep ``document``; ``TrustBundleRollback`` if older than the kept one."""
        bundle = parse_trust_bundle(document, self.hub_key, allow_test=allow_test)
        current = self.version
        if bundle.version < current:
            raise TrustBundleRollback(f"version {bundle.version} < {current}")
        if bundle.version == current:
            return bundle
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".trust-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(dict(document), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return bundle


def fetch_trust_bundle(
    platform: PlatformLike, state: TrustBundleFile, *, allow_test: bool = False
) -> TrustBundle:
    """GET /v1/trust-bundle and ``state.accept`` it (transport errors pass through)."""
    document = platform.http.request_json("GET", "/v1/trust-bundle")
    if not isinstance(document, Mapping):
        raise TrustBundleError("the trust bundle answer is not an object")
    return state.accept(document, allow_test=allow_test)


def check_with_platform(platform: PlatformLike, result: CardReadResult) -> CardReadResult:
    """Ask the platform about a certificate the device could not verify.

    Only for ``NOT_VERIFIED_ON_DEVICE``; any other result is returned as it is. The
    signed answer must verify under the pinned hub key and name this certificate:
    then the certificate is ``VERIFIED_BY_PLATFORM`` or ``UNTRUSTED`` (``PlatformRefused``
    with the platform's code as detail). Offline (a transport or platform error) the
    result stays ``NOT_VERIFIED_ON_DEVICE``: the case goes on, marked.
    """
    if not result.certificate_check.platform_checkable or platform.hub_public_key is None:
        return result
    der = result.certificate.der
    try:
        answer = platform.http.request_json(
            "POST", "/v1/certificate-checks", body={"certificate": b64e_std(der)}
        )
        body = verify_document(answer, "certificate_check", platform.hub_public_key)
    except (SyncError, BadHubSignature):
        return result
    if body.get("certificate_sha256") != hashlib.sha256(der).hexdigest():
        return result
    if body.get("status") == "verified_by_platform":
        check = CertificateCheck(CertificateStatus.VERIFIED_BY_PLATFORM)
    else:
        error = body.get("error")
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        check = CertificateCheck(CertificateStatus.UNTRUSTED, error=PlatformRefused(code))
    return dataclasses.replace(result, certificate_check=check)


def device_trust_store(settings: DeviceSettings) -> TrustStore | None:
    """The device's trust: its roots directory plus the trust bundle it accepted last.

    ``None`` without a roots directory. The stored bundle is re-verified under the
    pinned hub key (``settings.hub_public_key``); without a pinned key, or when it no
    longer verifies (changed on disk), it is ignored with a warning: cards are still read
    against the pinned roots.
    """
    if settings.roots_dir is None:
        return None
    store = TrustStore.from_directory(settings.roots_dir, allow_test_roots=settings.test_roots)
    if settings.hub_public_key is None:
        return store
    hub_key = public_key_from_b64(settings.hub_public_key)
    try:
        bundle = TrustBundleFile(settings.trust_bundle_path, hub_key).load(
            allow_test=settings.test_roots
        )
    except TrustBundleError as exc:
        # Reading cards must go on: the pinned roots still work; the technician is told.
        log.warning("stored trust bundle ignored: %s", exc.code)
        return store
    return apply_bundle(store, bundle)
