"""The patient's card as proof: its certificate, and its signature over a hub challenge."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from hub_server import crud
from hub_server.core.certs import PatientCertificate, verify_card_signature
from hub_server.core.db import utcnow
from hub_server.core.errors import InvalidInput, Unavailable
from hub_server.core.state import HubState
from hub_server.models import Challenge
from sync.signed import b64d, b64d_std

__all__ = ["check_card_signature", "decode_certificate", "new_challenge", "verify_patient"]


def decode_certificate(text: str) -> bytes:
    """The certificate's DER from its text: standard base64, padded (``InvalidInput``
    otherwise)."""
    try:
        return b64d_std(text)
    except ValueError:
        raise InvalidInput(
            "malformed_certificate",
            "certificate must be base64 DER",
            "証明書の形式が正しくありません。カードを読み直してください。",
        ) from None


def verify_patient(hub: HubState, der: bytes) -> PatientCertificate:
    """The patient's certificate, checked against the hub's trust roots and revocations."""
    if hub.verifier is None:
        raise Unavailable("no_trust_roots", "the hub has no trust roots configured")
    return hub.verifier.verify(der, now=utcnow())


def new_challenge(
    hub: HubState, session: Session, *, purpose: str, device_id: str | None
) -> Challenge:
    """A single-use, short-lived nonce for the card to sign (committed)."""
    ch = crud.create_challenge(
        session,
        purpose=purpose,
        device_id=device_id,
        ttl=timedelta(seconds=hub.settings.challenge_ttl_seconds),
        now=utcnow(),
    )
    session.commit()
    return ch


def check_card_signature(
    session: Session,
    cert: PatientCertificate,
    *,
    challenge_id: str,
    purpose: str,
    device_id: str | None,
    signature: str,
) -> None:
    """Use the challenge once (committed) and check the card's signature over its nonce."""
    ch = crud.consume_challenge(
        session, challenge_id=challenge_id, purpose=purpose, device_id=device_id, now=utcnow()
    )
    session.commit()
    try:
        raw = b64d_std(signature)
    except ValueError:
        raise InvalidInput("bad_signature_encoding", "signature must be base64") from None
    verify_card_signature(cert, b64d(ch.nonce), raw)
