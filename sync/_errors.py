"""Errors of ``sync``: one tree, each with a stable ``code`` and two messages::

SyncError
 ├── EnvelopeError              a sealed case cannot be parsed or opened
 │    ├── MalformedEnvelope      not a v1/v2 envelope (truncated, bad header, trailing bytes)
 │    ├── UnsupportedVersion     a version or algorithm this build does not know
 │    ├── UnknownDevice          the signing device is unknown or revoked
 │    ├── BadSignature           the device signature does not verify (any changed byte)
 │    ├── NotARecipient          this hospital is not among the recipients
 │    ├── DecryptionFailed       the key or payload does not decrypt (wrong key, replay)
 │    └── WrongKeyKind           no key of the kind the version needs (v1 X25519, v2 X-Wing),
 │                               on either side: a recipient to seal to, the hospital's own
 ├── CaseRefused              an opened case the receiving side cannot take (its content);
 │                             recorded as refused, never handed over again
 ├── HandOffDeferred          the receiving side cannot store a case now (its database is
 │                             unavailable): not recorded, read again after a pause
 ├── OutboxError                the device's durable queue
 │    ├── OutboxFull             the operator's storage limit is reached
 │    ├── StorageFull            the disk is full (sqlite: database or disk is full)
 │    └── OutboxCorrupt          the queue database cannot be used
 └── PlatformError              talking to the hub
      ├── TransportError         no answer: connect, read, write, TLS, protocol
      │    └── Timeout           no answer in time
      ├── HttpStatusError        the hub answered a non-success status (``status``)
      │    ├── AuthError          401 / 403 (signature, revoked device)
      │    ├── NotFound           404
      │    ├── Conflict           409 (idempotency key reused with another body)
      │    ├── RateLimited        429 (``retry_after``)
      │    └── ServerError        5xx (``retry_after`` when given)
      └── ResponseError          the answer is not what the contract says (bad JSON,
           │                     directory signature wrong)
           ├── MalformedEvent     a stream event cannot be parsed (reported, retried)
           ├── BadHubSignature    a hub-signed document does not verify
           └── SnapshotRollback   a revocation snapshot older than the last one accepted
"""

from __future__ import annotations

from errbase import KyukyuError

__all__ = [
    "AuthError",
    "BadHubSignature",
    "BadSignature",
    "CaseRefused",
    "Conflict",
    "DecryptionFailed",
    "EnvelopeError",
    "HandOffDeferred",
    "HttpStatusError",
    "MalformedEnvelope",
    "MalformedEvent",
    "NotARecipient",
    "NotFound",
    "OutboxCorrupt",
    "OutboxError",
    "OutboxFull",
    "PlatformError",
    "RateLimited",
    "ResponseError",
    "ServerError",
    "SnapshotRollback",
    "StorageFull",
    "SyncError",
    "Timeout",
    "TransportError",
    "UnknownDevice",
    "UnsupportedVersion",
    "WrongKeyKind",
]


class SyncError(KyukyuError):
    """Base of every error raised by ``sync``. Details never carry patient data."""

    code = "sync_error"
    message_ja = "送信処理でエラーが発生しました。"
    message_en = "The case transfer reported an error."


# -- envelope ---------------------------------------------------------------------------


class EnvelopeError(SyncError):
    code = "envelope_error"
    message_ja = "封印された症例データを開けません。"
    message_en = "The sealed case cannot be opened."


class MalformedEnvelope(EnvelopeError):
    code = "envelope_malformed"
    message_ja = "症例データの形式が正しくありません。"
    message_en = "The sealed case is malformed."


class UnsupportedVersion(EnvelopeError):
    code = "envelope_unsupported"
    message_ja = "対応していない形式の症例データです。"
    message_en = "The sealed case uses an unsupported version or algorithm."


class UnknownDevice(EnvelopeError):
    code = "envelope_unknown_device"
    message_ja = "送信元の端末が登録されていないか、失効しています。"
    message_en = "The sending device is unknown or revoked."


class BadSignature(EnvelopeError):
    code = "envelope_bad_signature"
    message_ja = "症例データの署名が正しくありません。改ざんの可能性があります。"
    message_en = "The device signature of the sealed case does not verify (tampered?)."


class NotARecipient(EnvelopeError):
    code = "envelope_not_recipient"
    message_ja = "この病院宛ての症例データではありません。"
    message_en = "This hospital is not a recipient of the sealed case."


class DecryptionFailed(EnvelopeError):
    code = "envelope_decryption_failed"
    message_ja = "症例データを復号できません。"
    message_en = "The sealed case does not decrypt with this hospital's key."


class WrongKeyKind(EnvelopeError):
    code = "envelope_wrong_key_kind"
    message_ja = (
        "症例データの形式に合う種類の鍵がありません（v1 は X25519、v2 は耐量子ハイブリッド鍵）。"
    )
    message_en = "No key of the kind this envelope version needs (v1: X25519, v2: MLKEM768-X25519)."


# -- the receiving side ----------------------------------------------------------------


class CaseRefused(SyncError):
    """An opened case its recipient cannot take: not a case it can read, or not storable.

    Raised by a receiver's ``on_case`` (the hospital subclasses it with its own codes);
    the case is then recorded as refused like an envelope that does not open.
    """

    code = "case_refused"
    message_ja = "受信した事案を取り込めません。"
    message_en = "The received case cannot be taken in."


class HandOffDeferred(SyncError):
    """The recipient cannot store a case now (its database is unavailable).

    Raised by a receiver's ``on_case``: the case is not recorded and is read again after
    a pause; it is never refused for this.
    """

    code = "handoff_deferred"
    message_ja = "事案を保存できません。しばらくしてから再試行します。"
    message_en = "The case cannot be stored now; it will be taken again."


# -- outbox -----------------------------------------------------------------------------


class OutboxError(SyncError):
    code = "outbox_error"
    message_ja = "送信待ちデータの保存でエラーが発生しました。"
    message_en = "The outbox reported an error."


class OutboxFull(OutboxError):
    code = "outbox_full"
    message_ja = "送信待ちの症例が上限に達しました。通信の回復を待つか、管理者に連絡してください。"
    message_en = "The outbox storage limit is reached; no new case can be queued."


class StorageFull(OutboxError):
    code = "storage_full"
    message_ja = "端末の記憶領域がいっぱいです。送信待ちの症例は保持されています。"
    message_en = "The device storage is full; queued cases are kept, the new one was not queued."


class OutboxCorrupt(OutboxError):
    code = "outbox_corrupt"
    message_ja = "送信待ちデータベースを使用できません。管理者に連絡してください。"
    message_en = "The outbox database cannot be used."


# -- platform ---------------------------------------------------------------------------


class PlatformError(SyncError):
    code = "platform_error"
    message_ja = "プラットフォームとの通信でエラーが発生しました。"
    message_en = "Talking to the platform failed."


class TransportError(PlatformError):
    code = "platform_unreachable"
    message_ja = "プラットフォームに接続できません。通信状態を確認してください。"
    message_en = "The platform cannot be reached."


class Timeout(TransportError):
    code = "platform_timeout"
    message_ja = "プラットフォームからの応答がありません。"
    message_en = "The platform did not answer in time."


class HttpStatusError(PlatformError):
    code = "platform_status"
    message_ja = "プラットフォームがエラーを返しました。"
    message_en = "The platform answered with an error status."

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        retry_after: float | None = None,
        hub_code: str | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.hub_code = hub_code
        super().__init__(f"HTTP {status}" + (f": {detail}" if detail else ""))


class AuthError(HttpStatusError):
    code = "platform_auth"
    message_ja = "端末の認証に失敗しました。端末が失効している可能性があります。"
    message_en = "The platform refused the device's signature (revoked or unknown device?)."


class NotFound(HttpStatusError):
    code = "platform_not_found"
    message_ja = "要求したデータがプラットフォームにありません。"
    message_en = "The platform does not know the requested resource."


class Conflict(HttpStatusError):
    code = "platform_conflict"
    message_ja = "プラットフォームが要求を重複として拒否しました。"
    message_en = "The platform refused the request as a conflict."


class RateLimited(HttpStatusError):
    code = "platform_rate_limited"
    message_ja = "プラットフォームが混雑しています。しばらくして再送します。"
    message_en = "The platform asked to slow down."


class ServerError(HttpStatusError):
    code = "platform_server_error"
    message_ja = "プラットフォームで障害が発生しています。自動で再送します。"
    message_en = "The platform reported a server error."


class ResponseError(PlatformError):
    code = "platform_bad_response"
    message_ja = "プラットフォームの応答が正しくありません。"
    message_en = "The platform's answer does not follow the contract."


class MalformedEvent(ResponseError):
    """A stream event that cannot be parsed or whose number is not the one inside its data.

    Reported and retried (the stream is read again from the last event handed over);
    never skipped, and the position never moves past it.
    """

    code = "platform_bad_event"
    message_ja = "プラットフォームからの通知を読み取れません。自動で再接続します。"
    message_en = "A platform stream event cannot be parsed; reconnecting."


class BadHubSignature(ResponseError):
    """A hub-signed document (directory, revocation snapshot, device key) does not verify."""

    code = "hub_signature_invalid"
    message_ja = "プラットフォームの署名を確認できません。"
    message_en = "The hub signature of a signed document does not verify."


class SnapshotRollback(ResponseError):
    """A revocation snapshot older than the last one accepted (rollback refused)."""

    code = "revocation_rollback"
    message_ja = "失効情報が以前のものより古いため受け付けません。"
    message_en = "The revocation snapshot is older than the last one accepted."
