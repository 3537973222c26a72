"""The one adapter between the case flow and the card layer (``edge.jpki.read``).

Everything the flow learns from a tap passes through ``JpkiCardReading.read``:
when the card layer changes how it reports what was verified, this file is the
one place that follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.jpki import IntegrityError
from edge.jpki.read import CertificateStatus, ReadOptions, read_card
from edge.jpki.revocation import RevocationSnapshot
from edge.jpki.trust import TrustStore
from edge.reader import ApduChannel, Connection
from edge.trust_bundle import PlatformLike, check_with_platform

from ._ports import AttributesSeen, CardFacts, CardRequest

__all__ = ["JpkiCardReading"]


@dataclass
class JpkiCardReading:
    """Reads with ``edge.jpki.read.read_card`` against the device's trust store.

    With ``platform``, a certificate whose issuer this device does not pin
    (``not_verified_on_device``) is sent to the platform for the check (it runs in the
    caller's thread: the flow's worker, never the UI's). Offline it stays
    ``not_verified_on_device`` and the case goes on, marked.
    """

    trust: TrustStore | None
    revocation: RevocationSnapshot | None = None
    platform: PlatformLike | None = None
    # After the platform verified a certificate the device could not (a root generation
    # new to this device): fetch the platform's trust bundle and return the new store.
    on_platform_verified: Callable[[], TrustStore | None] | None = None

    def read(
        self,
        connection: Connection,
        request: CardRequest,
        on_step: Callable[[str], None] | None = None,
    ) -> CardFacts:
        options = ReadOptions(
            trust=self.trust,
            revocation=self.revocation,
            pin=request.pin,
            collation_b=request.collation_b,
            challenge=request.challenge,
            allow_last_try=request.allow_last_try,
            on_step=on_step,
        )
        result = read_card(ApduChannel(connection), options)
        if self.platform is not None:
            result = check_with_platform(self.platform, result)
            if (
                result.certificate_check.status is CertificateStatus.VERIFIED_BY_PLATFORM
                and self.on_platform_verified is not None
            ):
                self.trust = self.on_platform_verified() or self.trust
        cert = result.certificate_check
        if cert.status is CertificateStatus.UNTRUSTED:
            # The certificate is there but not good (expired, revoked, wrong policy, or
            # refused by the platform): the case goes on without the summary.
            return CardFacts(
                token_type=result.token_type.value,
                certificate_ok=False,
                certificate_problem=cert.error,
                certificate_status=cert.status.value,
            )
        # A requested part that is not verified stops the step with its typed error
        # (WrongPin with tries left, LastTryNeedsConfirmation, CardRemoved, tampered ...).
        for part in (result.pin_proof, result.attributes_check):
            if part.requested and not part.verified:
                raise part.error or IntegrityError("part not verified")
        attrs = None
        if result.attributes is not None and result.attributes_check.verified:
            a = result.attributes
            attrs = AttributesSeen(a.name, a.birth_date, a.sex, a.address)
        proof = result.proof("auth_key")
        return CardFacts(
            token_type=result.token_type.value,
            certificate_der=result.certificate.der,
            # Trusted here, or left to the platform (issuer not pinned on this device).
            certificate_ok=True,
            certificate_status=cert.status.value,
            auth_signature=None if proof is None else proof.signature,
            card_present=result.card_presence.verified,
            attributes=attrs,
        )
