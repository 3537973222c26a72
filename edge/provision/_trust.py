"""``kyukyu provision trust install``: JPKI roots into the device's trust store.

A certificate is installed only when the SHA-256 of its DER matches a pinned
production fingerprint (``edge.jpki.trust.PINNED_ROOTS``); a generated root with
the same subject does not match. With ``allow_test`` (development, demo,
integration rigs) an unpinned self-signed CA is installed as a *test* root and
the device is put in test mode (``KYUKYU_EDGE_TEST_ROOTS=true``).

The text AP's card-verifiable certificates chain to CA public keys, not to X.509
roots: a file named ``cvc-ca-<key id as 32 hex digits>.pem`` (a PEM public key) is
such a key. A pinned production key id must carry exactly the pinned key; any other
key id is a test key, installed only with ``allow_test`` (and puts the device in test
mode), as ``edge.jpki.trust`` reads it.

``bundled``: the J-LIS roots the package ships (``edge.jpki.bundled``), read only when
each matches its pin, go through the same checks as files given by path (their source
reads ``bundled:<file name>``). A bundled copy that fails its pin refuses the whole
command, like any other refused file.

Expired roots: J-LIS's 2015 generation matches its pins but expired on
2025-10-19, and every certificate it issued has expired with it. Such a root is
reported as ``expired`` and skipped (nothing to install, not an error): the
command still succeeds when the rest is good. Any refused file (unreadable, not
a CA, unpinned without the test flag) fails the whole command and installs
nothing, so a store is never left half-written.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import dotenv
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from edge.jpki import JpkiError
from edge.jpki.bundled import bundled_roots
from edge.jpki.trust import PINNED_ROOTS, TrustStore, cvc_ca_key_from_pem, fingerprint
from edge.settings import PREFIX

from ._config import update_config
from ._layout import ROOTS_DIR, DeviceLayout, ProvisionError, ensure_dir, write_if_changed

__all__ = ["RootOutcome", "TrustReport", "install_roots"]

Status = Literal["installed", "unchanged", "expired", "refused"]


@dataclass(frozen=True)
class RootOutcome:
    """What happened to one certificate (no subject: only the pin name and fingerprint)."""

    source: str
    sha256: str | None
    name: str | None
    status: Status
    test: bool = False
    not_after: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class TrustReport:
    outcomes: list[RootOutcome] = field(default_factory=list)
    test_mode: bool = False

    @property
    def ok(self) -> bool:
        return not any(o.status == "refused" for o in self.outcomes)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "test_mode": self.test_mode,
            "roots": [o.to_dict() for o in self.outcomes],
        }


def _certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return list(x509.load_pem_x509_certificates(data))
    return [x509.load_der_x509_certificate(data)]


def _self_signed_ca(cert: x509.Certificate) -> str | None:
    """None when ``cert`` is a self-signed CA certificate, else why not."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "not a CA certificate (no basicConstraints)"
    if not bc.ca:
        return "not a CA certificate"
    key = cert.public_key()
    algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return "unsupported key type"
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return "not self-signed (a root must sign itself)"
    return None


def _classify(
    source: str, cert: x509.Certificate, allow_test: bool, now: datetime
) -> tuple[RootOutcome, bytes | None, str | None]:
    der = cert.public_bytes(Encoding.DER)
    fp = fingerprint(der)
    not_after = cert.not_valid_after_utc
    pin = PINNED_ROOTS.get(fp)
    if pin is not None:
        if now > not_after:
            reason = f"expired {not_after.date().isoformat()}: no certificate under it is valid"
            return (
                RootOutcome(source, fp, pin.name, "expired", False, not_after.isoformat(), reason),
                None,
                None,
            )
        return (
            RootOutcome(source, fp, pin.name, "installed", False, not_after.isoformat()),
            der,
            pin.name,
        )
    why = _self_signed_ca(cert)
    if not allow_test:
        reason = "fingerprint matches no pinned J-LIS root"
        return (
            RootOutcome(source, fp, None, "refused", False, not_after.isoformat(), reason),
            None,
            None,
        )
    if why is not None:
        return (
            RootOutcome(source, fp, None, "refused", True, not_after.isoformat(), why),
            None,
            None,
        )
    if now > not_after:
        reason = f"expired {not_after.date().isoformat()}"
        return (
            RootOutcome(source, fp, None, "refused", True, not_after.isoformat(), reason),
            None,
            None,
        )
    name = f"test-{fp[:16].lower()}"
    return RootOutcome(source, fp, name, "installed", True, not_after.isoformat()), der, name


_CVC_CA_FILE = re.compile(r"cvc-ca-([0-9A-Fa-f]{32})\.pem")


def _classify_cvc(
    source: str, key_id_hex: str, data: bytes, allow_test: bool
) -> tuple[RootOutcome, bytes | None]:
    """A text-AP CVC CA public key (``cvc-ca-<key id>.pem``): a pinned production key
    installs as itself; any other key id is a test key, for test mode only."""
    name = f"cvc-ca-{key_id_hex.upper()}"
    try:
        key = cvc_ca_key_from_pem(bytes.fromhex(key_id_hex), data)
    except JpkiError as exc:
        return RootOutcome(source, None, None, "refused", reason=exc.code), None
    fp = hashlib.sha256(key.public_pem()).hexdigest().upper()
    if key.test and not allow_test:
        reason = "CVC CA key id matches no pinned J-LIS key"
        return RootOutcome(source, fp, None, "refused", True, reason=reason), None
    return RootOutcome(source, fp, name, "installed", key.test), key.public_pem()


def install_roots(
    layout: DeviceLayout,
    files: Iterable[str | os.PathLike[str]],
    *,
    allow_test: bool = False,
    bundled: bool = False,
    now: datetime | None = None,
) -> TrustReport:
    """Check every certificate in ``files`` (and the package's own J-LIS roots when
    ``bundled``); install them all, or nothing if one is refused."""
    t = now or datetime.now(UTC)
    report = TrustReport()
    to_write: dict[str, bytes] = {}
    keys_to_write: dict[str, bytes] = {}
    if bundled:
        try:
            shipped = bundled_roots()
        except JpkiError as exc:
            refused = RootOutcome("bundled", None, None, "refused", reason=exc.detail or exc.code)
            report.outcomes.append(refused)
            shipped = ()
        for root in shipped:
            outcome, der, name = _classify(f"bundled:{root.file}", root.certificate, False, t)
            report.outcomes.append(outcome)
            if der is not None and name is not None:
                to_write[name] = der
    for f in files:
        path = Path(f)
        cvc = _CVC_CA_FILE.fullmatch(path.name)
        if cvc is not None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.outcomes.append(
                    RootOutcome(str(path), None, None, "refused", reason=exc.strerror)
                )
                continue
            outcome, pem = _classify_cvc(str(path), cvc.group(1), data, allow_test)
            report.outcomes.append(outcome)
            if pem is not None and outcome.name is not None:
                keys_to_write[outcome.name] = pem
            continue
        try:
            certs = _certificates(path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not an X.509 certificate"
            report.outcomes.append(RootOutcome(str(path), None, None, "refused", reason=reason))
            continue
        for cert in certs:
            outcome, der, name = _classify(str(path), cert, allow_test, t)
            report.outcomes.append(outcome)
            if der is not None and name is not None:
                to_write[name] = der
    if not report.ok:
        return report
    if not to_write and not keys_to_write:
        return report
    directory = layout.host(ROOTS_DIR)
    ensure_dir(directory, mode=0o755, uid=0, gid=0)
    for i, outcome in enumerate(report.outcomes):
        if outcome.status != "installed" or outcome.name is None:
            continue
        if outcome.name in keys_to_write:
            pem = keys_to_write[outcome.name]
        else:
            pem = x509.load_der_x509_certificate(to_write[outcome.name]).public_bytes(Encoding.PEM)
        changed = write_if_changed(directory / f"{outcome.name}.pem", pem, mode=0o644, uid=0, gid=0)
        if not changed:
            report.outcomes[i] = RootOutcome(
                outcome.source,
                outcome.sha256,
                outcome.name,
                "unchanged",
                outcome.test,
                outcome.not_after,
            )
    test_mode = allow_test and any(o.test for o in report.outcomes if o.status != "refused")
    report.test_mode = test_mode
    settings: dict[str, object | None] = {"roots_dir": str(ROOTS_DIR)}
    if test_mode:
        settings["test_roots"] = True
    update_config(layout, settings)
    try:  # the device must be able to load what was installed
        TrustStore.from_directory(directory, allow_test_roots=test_mode or _in_test_mode(layout))
    except JpkiError as exc:
        raise ProvisionError(f"installed roots do not load: {exc.code}") from None
    return report


def _in_test_mode(layout: DeviceLayout) -> bool:
    """Whether the root's settings file (only the file) puts the device in test mode."""
    try:
        value = dotenv.dotenv_values(layout.config).get(f"{PREFIX}TEST_ROOTS")
    except OSError:
        return False
    return (value or "").strip().lower() in {"true", "1", "yes", "on"}
