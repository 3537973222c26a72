"""Both ends of the wire between the ambulance and the hospitals.

Public API (the rest is private)::

    sync.envelope   SealedCase (v1 format; metadata readable without decrypting)
    sync.seal       seal_case / open_case
    sync.fhir_case  the case FHIR document Bundle
    sync.outbox     Outbox: durable SQLite store-and-forward queue
    sync.client     PlatformClient: every device call of the hub
    sync.receiver   Receiver: the hospital side of the stream
    sync.signing    signed requests (both ends)
    sync.signed     hub-signed documents: RFC 8785 JSON, Ed25519, base64 (docs/envelope.md)
"""

from __future__ import annotations

from sync._errors import (
    AuthError,
    BadHubSignature,
    BadSignature,
    Conflict,
    DecryptionFailed,
    EnvelopeError,
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
)
from sync.envelope import SealedCase
from sync.outbox import DeliveryStatus, FullPolicy, Outbox
from sync.seal import OpenedCase, open_case, seal_case, seal_json

# The httpx-based parts load on first use, so ``import sync.envelope`` (the hub,
# the receiver's parsing) stays free of the HTTP stack.
_LAZY = {
    "HospitalClient": "sync.receiver",
    "HubDeviceKeys": "sync.device_keys",
    "PlatformClient": "sync.client",
    "Receiver": "sync.receiver",
    "ReceiverState": "sync.receiver",
    "Sender": "sync.sender",
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
    "BadHubSignature",
    "BadSignature",
    "Conflict",
    "DecryptionFailed",
    "DeliveryStatus",
    "EnvelopeError",
    "FullPolicy",
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
    "SnapshotRollback",
    "StorageFull",
    "SyncError",
    "Timeout",
    "TransportError",
    "UnknownDevice",
    "UnsupportedVersion",
    "follow_answers",
    "open_case",
    "seal_case",
    "seal_json",
]
