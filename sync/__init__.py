"""Both ends of the wire between the ambulance and the hospitals.

Public API (the rest is private)::

    sync.envelope   SealedCase (v1 format; metadata readable without decrypting)
    sync.seal       seal_case / open_case
    sync.fhir_case  the case FHIR document Bundle
    sync.outbox     Outbox: durable SQLite store-and-forward queue
    sync.client     PlatformClient: every device call of the hub
    sync.receiver   Receiver: the hospital side of the stream
    sync.signing    signed requests (both ends)
"""

from __future__ import annotations

from sync._errors import (
    AuthError,
    BadSignature,
    Conflict,
    DecryptionFailed,
    EnvelopeError,
    HttpStatusError,
    MalformedEnvelope,
    NotARecipient,
    NotFound,
    OutboxCorrupt,
    OutboxError,
    OutboxFull,
    PlatformError,
    RateLimited,
    ResponseError,
    ServerError,
    StorageFull,
    SyncError,
    Timeout,
    TransportError,
    UnknownDevice,
    UnsupportedVersion,
)
from sync.envelope import SealedCase
from sync.seal import OpenedCase, open_case, seal_case, seal_json

__all__ = [
    "AuthError",
    "BadSignature",
    "Conflict",
    "DecryptionFailed",
    "EnvelopeError",
    "HttpStatusError",
    "MalformedEnvelope",
    "NotARecipient",
    "NotFound",
    "OpenedCase",
    "OutboxCorrupt",
    "OutboxError",
    "OutboxFull",
    "PlatformError",
    "RateLimited",
    "ResponseError",
    "SealedCase",
    "ServerError",
    "StorageFull",
    "SyncError",
    "Timeout",
    "TransportError",
    "UnknownDevice",
    "UnsupportedVersion",
    "open_case",
    "seal_case",
    "seal_json",
]
