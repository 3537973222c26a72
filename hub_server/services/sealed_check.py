"""The sealed envelope at the platform's door: a device's case or closure is refused
unless its bytes are a ``sync.envelope`` sealed case of that device, signed by it, routed
to exactly the recipients its metadata names, and (``KYUKYU_HUB_REQUIRE_PQ``) v2.

The platform never opens a case: this reads the clear header and checks the signature
only. Used by the case post (``case_submission``) and the closure (``case_progress``).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub_server import crud
from hub_server.core.errors import InvalidInput
from sync import MalformedEnvelope
from sync.envelope import SealedCase, envelope_from_text
from sync.signing import public_key_from_b64

__all__ = ["OwnCaseRefused", "check_sealed", "check_sealed_by", "version_refused"]


def version_refused(
    why: str = "the platform accepts only envelope v2 (post-quantum hybrid) sealed cases",
) -> InvalidInput:
    """``KYUKYU_HUB_REQUIRE_PQ``: only v2 (post-quantum hybrid) sealed cases and closures
    come in (one code, one Japanese message; ``why`` in English for the logs)."""
    return InvalidInput(
        "envelope_version_refused",
        why,
        "このプラットフォームは耐量子暗号（v2）で封緘された事案のみ受け付けます。",
    )


class OwnCaseRefused(InvalidInput):
    """``envelope_version_refused`` for bytes that are otherwise the caller's sealed case
    (device, signature and routing checked): ``raw`` are those bytes. The case post
    answers one the platform already holds byte for byte with the stored case (a
    hospital handed it in after the direct route; refusing it again protects nothing
    and would tell the device its case reached nobody)."""

    def __init__(self, sealed: SealedCase) -> None:
        refused = version_refused()
        super().__init__(refused.code, refused.message_en, refused.message_ja)
        self.case_id, self.device_id, self.raw = sealed.case_id, sealed.device_id, sealed.raw


def check_sealed(
    envelope: str,
    case_id: str,
    recipients: list[str],
    caller: crud.Principal,
    *,
    opaque_allowed: bool,
    require_pq: bool = False,
) -> bytes:
    """The envelope's bytes, refused unless they are a sealed case of the caller.

    A ``sync.envelope`` v1 sealed case (``KKSC``) must name the caller as its device,
    carry the caller's Ed25519 signature (one verification, ~50 µs), and route to exactly
    the recipients of the metadata. Other bytes are refused unless the settings accept
    opaque envelopes (dev and test only). ``require_pq``: anything but a v2 sealed case
    is refused (``envelope_version_refused``), opaque bytes included.
    """
    key = caller.public_key
    if key is None:  # always set by the authentication; parse it otherwise
        key = public_key_from_b64(caller.row.public_key)  # type: ignore[union-attr]
    return check_sealed_by(
        envelope,
        case_id,
        recipients,
        caller.id,
        key,
        opaque_allowed=opaque_allowed,
        require_pq=require_pq,
    )


def check_sealed_by(
    envelope: str,
    case_id: str,
    recipients: list[str],
    device_id: str,
    key: Ed25519PublicKey,
    *,
    opaque_allowed: bool,
    require_pq: bool = False,
    parsed: SealedCase | None = None,
) -> bytes:
    """``check_sealed`` for the device ``device_id`` with its key ``key``; ``parsed``:
    the envelope already parsed from ``envelope`` (this hop parses it once)."""
    if parsed is not None:
        return _check_parsed(parsed, case_id, recipients, device_id, key, require_pq)
    try:
        data = envelope_from_text(envelope)
    except MalformedEnvelope:
        raise InvalidInput(
            "bad_envelope", "envelope must be base64", "送信データの形式が不正です。"
        ) from None
    if data[:4] != b"KKSC":
        if require_pq:
            raise version_refused()
        if opaque_allowed:
            return data
        raise InvalidInput(
            "not_sealed",
            "the envelope is not a sealed case (sync.envelope v1)",
            "送信データが封緘された事案ではありません。",
        )
    try:
        sealed = SealedCase.from_bytes(data)
    except Exception:
        raise InvalidInput(
            "malformed_envelope",
            "the sealed case cannot be parsed",
            "送信データが壊れています。",
        ) from None
    return _check_parsed(sealed, case_id, recipients, device_id, key, require_pq)


def _check_parsed(
    sealed: SealedCase,
    case_id: str,
    recipients: list[str],
    device_id: str,
    key: Ed25519PublicKey,
    require_pq: bool,
) -> bytes:
    if require_pq and sealed.version < 2:
        try:  # refused either way; which refusal says whether it is the caller's own
            _check_parsed(sealed, case_id, recipients, device_id, key, require_pq=False)
        except InvalidInput:
            raise version_refused() from None
        raise OwnCaseRefused(sealed)
    if sealed.device_id != device_id:
        raise InvalidInput(
            "envelope_not_yours",
            "the sealed case names another device than the caller",
            "送信データの端末が送信元と一致しません。",
        )
    try:
        sealed.verify_signature(key)
    except Exception:
        raise InvalidInput(
            "bad_envelope_signature",
            "the sealed case is not signed by the caller's key",
            "送信データの署名を検証できません。",
        ) from None
    if sealed.case_id != case_id or set(sealed.recipient_ids) != set(recipients):
        raise InvalidInput(
            "envelope_mismatch",
            "the envelope's case id or recipients differ from the routing metadata",
            "送信データと送信先の情報が一致しません。",
        )
    return sealed.raw
