"""The seams of the case flow: what it needs from the card layer, the platform and the outbox.

The flow is written against these Protocols only. The real implementations are
``edge.flow.JpkiCardReading`` (the one adapter over ``edge.jpki.read``),
``sync.client.PlatformClient`` and ``sync.outbox.Outbox``; tests may hand in
others (a platform that is down, a card that leaves).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.reader import Connection
from sync.answer_book import AnswerBook

__all__ = [
    "AttributesSeen",
    "CardFacts",
    "CardReading",
    "CardRequest",
    "CaseOutbox",
    "Platform",
]


@dataclass(frozen=True)
class CardRequest:
    """What one read asks of the card (all optional: a plain tap reads the certificate)."""

    pin: str | None = field(default=None, repr=False)
    collation_b: str | None = field(default=None, repr=False)
    challenge: bytes | None = None
    allow_last_try: bool = False


@dataclass(frozen=True)
class AttributesSeen:
    """The four attributes (基本4情報), verified against the card's own signature."""

    name: str = field(repr=False)
    birth_date: Any = field(repr=False)  # datetime.date
    sex: str = field(repr=False)
    address: str = field(repr=False)


@dataclass(frozen=True)
class CardFacts:
    """What one read established, part by part.

    ``certificate_ok``: chain, validity, key usage, policy and revocation all
    checked; ``certificate_problem`` the typed error when not (expired, revoked,
    untrusted); ``certificate_status`` who verified it. ``auth_signature``: the
    card's signature over the request's challenge (PIN proof). ``card_present``: the
    text AP's key proved this card is in the field. ``attributes``: only when their
    integrity was verified.
    """

    token_type: str  # card | android | iphone
    certificate_der: bytes | None = field(default=None, repr=False)
    certificate_ok: bool = False
    certificate_problem: Exception | None = None
    # edge.jpki's CertificateStatus value: trusted | verified_by_platform |
    # not_verified_on_device | untrusted | not_checked (None: not read).
    certificate_status: str | None = None
    auth_signature: bytes | None = field(default=None, repr=False)
    card_present: bool = False
    attributes: AttributesSeen | None = None


class CardReading(Protocol):
    """The card layer, as the flow sees it: one read over one connection."""

    def read(
        self,
        connection: Connection,
        request: CardRequest,
        on_step: Callable[[str], None] | None = None,
    ) -> CardFacts:
        """Read and verify; raises the card layer's typed errors (``CardRemoved``,
        ``WrongPin``, ``LastTryNeedsConfirmation``, ``PinBlocked``, ``PinRequired`` ...)."""
        ...


class Platform(Protocol):
    """The platform calls the flow makes (``sync.client.PlatformClient`` is one)."""

    def create_challenge(self, **fields: Any) -> dict[str, Any]: ...

    def lookup_summary(self, request: Mapping[str, Any]) -> dict[str, Any]: ...

    def hospital_directory(self, lat: float, lon: float) -> Sequence[Any]: ...

    def post_case(
        self,
        case_id: str,
        recipients: list[str],
        envelope: bytes,
        *,
        idempotency_key: str,
        outbox_depth: int | None = None,
    ) -> dict[str, Any]: ...

    def set_destination(self, case_id: str, hospital_id: str, via: str = "answer") -> None: ...

    def post_closure(self, case_id: str, recipients: list[str], envelope: bytes) -> None: ...

    def device_events(
        self,
        after: int = 0,
        stop: threading.Event | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> Iterator[Any]: ...

    def availability(self, after: int = 0) -> dict[str, Any]: ...


class CaseOutbox(Protocol):
    """The durable queue of sealed cases and the intents after them (``sync.outbox.Outbox``),
    and where the answers are kept (``answers``, an ``AnswerBook``: the answer stream's
    cursor)."""

    @property
    def answers(self) -> AnswerBook: ...

    def enqueue(self, sealed: bytes) -> Any: ...

    def enqueue_intent(
        self, case_id: str, kind: str, body: bytes, recipients: Sequence[str]
    ) -> Any: ...

    def close_case(self, case_id: str, closure: bytes, *, force: bool = False) -> bool | None: ...

    def intent_state(self, case_id: str, kind: str) -> str | None: ...

    def pending_count(self) -> int: ...

    def pending_by_kind(self) -> dict[str, int]: ...

    def status(self, case_id: str) -> Any: ...

    def wake(self) -> None: ...
