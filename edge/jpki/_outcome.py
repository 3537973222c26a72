"""What one read verified, part by part, and why a part was not verified.

A read is no longer all or nothing: the certificate fetches the patient's
summary, so a failure in the text AP must not throw away a certificate that
was read and verified. Each part of a ``CardReadResult`` carries a status and,
when it is not verified, the typed error that says why (its ``code``, Japanese
and English messages). Nothing unverified is ever presented as verified:
``verified`` is true only for ``CheckStatus.VERIFIED`` (and
``CertificateStatus.TRUSTED`` / ``VERIFIED_BY_PLATFORM`` for the certificate).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from errbase import KyukyuError

from .trust import Verdict

__all__ = ["CertificateCheck", "CertificateStatus", "Check", "CheckStatus"]


class CheckStatus(StrEnum):
    """The outcome of one optional part (PIN proof, attributes, card presence, photo)."""

    VERIFIED = "verified"
    """Read and checked against a pinned chain: show it as verified."""
    NOT_VERIFIED = "not_verified"
    """Read, but could not be checked (``error`` says why, e.g. an unpinned CA key):
    may be shown, marked "not verified"."""
    TAMPERED = "tampered"
    """The check proved the data wrong (hash or signature): refused, values withheld."""
    FAILED = "failed"
    """The step did not complete (wrong PIN or 照合番号B, card removed ...): nothing obtained."""
    NOT_REQUESTED = "not_requested"
    """Not asked for on this tap."""
    READ = "read"
    """Read from the card with nothing to check it against (the photo): shown as read only."""


class CertificateStatus(StrEnum):
    """The outcome of the user-authentication certificate's check."""

    TRUSTED = "trusted"
    """Chains to a pinned root on this device; valid, right usage and policy, not revoked."""
    UNTRUSTED = "untrusted"
    """Definitely refused (expired, revoked, wrong usage/policy, test root ...): ``error``."""
    NOT_VERIFIED_ON_DEVICE = "not_verified_on_device"
    """No root pinned on this device signed it (an unknown generation, or a forgery):
    the platform can check it (``CertificateCheck.platform_checkable``); offline the case
    goes on with this mark."""
    VERIFIED_BY_PLATFORM = "verified_by_platform"
    """Not pinned on the device, but the platform verified it against its own roots."""
    NOT_CHECKED = "not_checked"
    """No trust store was given (diagnostics only)."""


@dataclass(frozen=True)
class Check:
    """One part's status and, unless verified, the typed error saying why.

    ``error`` is ``None`` for ``VERIFIED``, ``NOT_REQUESTED`` and ``READ``.
    """

    status: CheckStatus
    error: KyukyuError | None = None

    @property
    def verified(self) -> bool:
        return self.status is CheckStatus.VERIFIED

    @property
    def requested(self) -> bool:
        return self.status is not CheckStatus.NOT_REQUESTED

    @property
    def code(self) -> str | None:
        return None if self.error is None else self.error.code

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "verified": self.verified,
            "error": None if self.error is None else self.error.to_dict(),
        }


NOT_REQUESTED = Check(CheckStatus.NOT_REQUESTED)


@dataclass(frozen=True)
class CertificateCheck:
    """The certificate's status, its verdict when trusted, the error when not."""

    status: CertificateStatus
    verdict: Verdict | None = None
    error: KyukyuError | None = None

    @property
    def trusted(self) -> bool:
        """True only when a pinned chain (on the device or at the platform) verified it."""
        return self.status in (CertificateStatus.TRUSTED, CertificateStatus.VERIFIED_BY_PLATFORM)

    @property
    def platform_checkable(self) -> bool:
        """The device could not decide (issuer not pinned here): worth asking the platform."""
        return self.status is CertificateStatus.NOT_VERIFIED_ON_DEVICE

    @property
    def code(self) -> str | None:
        return None if self.error is None else self.error.code

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "trusted": self.trusted,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "error": None if self.error is None else self.error.to_dict(),
        }
