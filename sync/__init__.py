"""Both ends of the wire between the ambulance and the hospitals.

Public API (the rest is private)::

    sync.envelope   SealedCase (v1 and v2 formats; metadata readable without decrypting)
    sync.seal       seal_case / open_case (SealingKeys / OpeningKeys, envelope_version_for)
    sync.xwing      X-Wing (MLKEM768-X25519) keys: 32-byte seed, 1,216-byte public key
    sync.fhir_case  the case FHIR document Bundle
    sync.outbox     Outbox: durable SQLite store-and-forward queue; in the same file:
                    ``sync.answer_ledger`` (``Outbox.answers``: answers, the stream's cursor),
                    ``sync.direct_ledger`` (``Outbox.direct``: what the direct route delivered),
                    ``sync.revocation_floor`` (``Outbox.revocation_floor``)
    sync.reseal     a case refused for its envelope version: sealed again, or refused
    sync.client     PlatformClient: every device call of the hub
    sync.receiver   Receiver: the hospital side of the stream
    sync.signing    signed requests (both ends); ``sync.SignedHttp``: a signed JSON client
    sync.signed     hub-signed documents: RFC 8785 JSON, Ed25519, base64 (docs/envelope.md)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync._errors import (
    AuthError,
    BadHubSignature,
    BadSignature,
    CaseRefused,
    Conflict,
    DecryptionFailed,
    EnvelopeError,
    HandOffDeferred,
    HttpStatusError,
    MalformedEnvelope,
    MalformedEvent,
    NotARecipient,
    NotFound,
    OutboxCorrupt,
    OutboxError,
    OutboxFull,
    PlatformError,
    RateLimited,
    ResponseError,
    ServerError,
    SnapshotRollback,
    StorageFull,
    SyncError,
    Timeout,
    TransportError,
    UnknownDevice,
    UnsupportedVersion,
    WrongKeyKind,
)

if TYPE_CHECKING:  # the lazy names below, for type checkers
    from sync._backoff import Backoff
    from sync._http import SignedHttp
    from sync.client import PlatformClient
    from sync.device_keys import HubDeviceKeys
    from sync.envelope import SealedCase
    from sync.outbox import DeliveryStatus, FullPolicy, Outbox
    from sync.receiver import HospitalClient, Receiver, ReceiverState
    from sync.seal import OpenedCase, open_case, seal_case, seal_json
    from sync.sender import Sender, follow_answers

# The httpx-based parts load on first use, so ``import sync.envelope`` (the hub,
# the receiver's parsing) stays free of the HTTP stack; the cryptography-based ones
# too, so ``import sync.reasons`` or the errors (the edge's first screen) load neither.
_LAZY = {
    "Backoff": "sync._backoff",
    "DeliveryStatus": "sync.outbox",
    "FullPolicy": "sync.outbox",
    "OpenedCase": "sync.seal",
    "Outbox": "sync.outbox",
    "SealedCase": "sync.envelope",
    "open_case": "sync.seal",
    "seal_case": "sync.seal",
    "seal_json": "sync.seal",
    "HospitalClient": "sync.receiver",
    "HubDeviceKeys": "sync.device_keys",
    "PlatformClient": "sync.client",
    "Receiver": "sync.receiver",
    "ReceiverState": "sync.receiver",
    "Sender": "sync.sender",
    "SignedHttp": "sync._http",
    "follow_answers": "sync.sender",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sync' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AuthError",
    "Backoff",
    "BadHubSignature",
    "BadSignature",
    "CaseRefused",
    "Conflict",
    "DecryptionFailed",
    "DeliveryStatus",
    "EnvelopeError",
    "FullPolicy",
    "HandOffDeferred",
    "HospitalClient",
    "HttpStatusError",
    "HubDeviceKeys",
    "MalformedEnvelope",
    "MalformedEvent",
    "NotARecipient",
    "NotFound",
    "OpenedCase",
    "Outbox",
    "OutboxCorrupt",
    "OutboxError",
    "OutboxFull",
    "PlatformClient",
    "PlatformError",
    "RateLimited",
    "Receiver",
    "ReceiverState",
    "ResponseError",
    "SealedCase",
    "Sender",
    "ServerError",
    "SignedHttp",
    "SnapshotRollback",
    "StorageFull",
    "SyncError",
    "Timeout",
    "TransportError",
    "UnknownDevice",
    "UnsupportedVersion",
    "WrongKeyKind",
    "follow_answers",
    "open_case",
    "seal_case",
    "seal_json",
]
