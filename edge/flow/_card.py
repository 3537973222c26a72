"""The one adapter between the case flow and the card layer (``edge.jpki.read``).

Everything the flow learns from a tap passes through ``JpkiCardReading.read``:
when the card layer changes how it reports what was verified, this file is the
one place that follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.jpki import TokenType, TrustError
from edge.jpki.read import ReadOptions, read_card
from edge.jpki.revocation import RevocationSnapshot
from edge.jpki.trust import TrustStore
from edge.reader import ApduChannel, Connection

from ._ports import AttributesSeen, CardFacts, CardRequest

__all__ = ["JpkiCardReading"]


@dataclass
class JpkiCardReading:
    """Reads with ``edge.jpki.read.read_card`` against the device's trust store."""

    trust: TrustStore | None
    revocation: RevocationSnapshot | None = None

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
        try:
            result = read_card(ApduChannel(connection), options)
        except TrustError as exc:
            # The certificate is there but not good (expired, revoked, untrusted):
            # the case goes on without the summary.
            return CardFacts(
                token_type=TokenType.CARD.value, certificate_ok=False, certificate_problem=exc
            )
        signature = next((p.signature for p in result.proofs if p.kind == "auth_key"), None)
        present = any(p.kind == "card_presence" for p in result.proofs)
        attrs = None
        if result.attributes is not None and result.attributes_integrity:
            a = result.attributes
            attrs = AttributesSeen(a.name, a.birth_date, a.sex, a.address)
        return CardFacts(
            token_type=result.token_type.value,
            certificate_der=result.certificate.der,
            certificate_ok=self.trust is not None and result.verdict is not None,
            auth_signature=signature,
            card_present=present,
            attributes=attrs,
        )
