"""J-LIS's published root certificates, shipped with the package and checked against the pins.

``edge/jpki/roots/`` holds the public roots of the 2015 and 2023 generations
(``auth-ca-2015.pem``, ``auth-ca-2023.pem``, ``sign-ca-2015.pem``, ``sign-ca-2023.pem``)
exactly as J-LIS publishes them, so that a device can be provisioned and the tests can
run with nothing beside the project (``kyukyu provision trust install --bundled``).

The files are data, not trust. Trust still comes from the fingerprints pinned in
``edge.jpki.trust.PINNED_ROOTS``: ``bundled_roots`` reads every ``*.pem`` of the folder
and refuses the lot (``RootNotPinned``) when one of them is not exactly one certificate
whose SHA-256 is the pin its file name names (``auth-ca-2023.pem`` must be pin
``auth-2023``). A copy edited in place, or a generated root with the same subject, is
therefore refused on load; an empty folder (package data left out of a wheel) raises
``NoTrustAnchors``. The 2019 generation is pinned but not shipped (docs/jpki-card.md,
"Certificates").
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ._errors import NoTrustAnchors, RootNotPinned
from .trust import PINNED_ROOTS, PinnedRoot, fingerprint

__all__ = ["BUNDLED_ROOTS_FOLDER", "BundledRoot", "bundled_file_name", "bundled_roots"]

BUNDLED_ROOTS_FOLDER = "roots"  # inside the edge.jpki package


@dataclass(frozen=True)
class BundledRoot:
    """One shipped root whose fingerprint matched its pin."""

    file: str
    pin: PinnedRoot
    certificate: x509.Certificate

    @property
    def sha256(self) -> str:
        return self.pin.sha256

    def pem(self) -> bytes:
        """The certificate re-encoded from its checked DER (no text around it)."""
        return self.certificate.public_bytes(Encoding.PEM)


def bundled_file_name(pin: PinnedRoot) -> str:
    """J-LIS's file name for a pinned root: ``auth-2023`` -> ``auth-ca-2023.pem``."""
    purpose, _, generation = pin.name.partition("-")
    return f"{purpose}-ca-{generation}.pem"


def _folder() -> Traversable:
    return files("edge.jpki") / BUNDLED_ROOTS_FOLDER


def bundled_roots(folder: Traversable | None = None) -> tuple[BundledRoot, ...]:
    """The shipped roots, each checked against its pin; ``folder`` replaces the package's
    own (tests). Raises ``RootNotPinned`` naming the first file that does not match."""
    source = _folder() if folder is None else folder
    entries = sorted(
        (e for e in source.iterdir() if e.is_file() and e.name.endswith(".pem")),
        key=lambda e: e.name,
    )
    if not entries:
        raise NoTrustAnchors("no bundled J-LIS root: the package data is missing")
    by_file = {bundled_file_name(p): p for p in PINNED_ROOTS.values()}
    out = []
    for entry in entries:
        try:
            certs = x509.load_pem_x509_certificates(entry.read_bytes())
        except ValueError:
            raise RootNotPinned(f"bundled {entry.name}: not a PEM certificate") from None
        if len(certs) != 1:
            raise RootNotPinned(f"bundled {entry.name}: {len(certs)} certificates, not one")
        fp = fingerprint(certs[0].public_bytes(Encoding.DER))
        pin = by_file.get(entry.name)
        if pin is None or pin.sha256 != fp:
            raise RootNotPinned(f"bundled {entry.name}: SHA-256 {fp} is not its pin")
        out.append(BundledRoot(entry.name, pin, certs[0]))
    return tuple(out)
