"""Drain the outbox to the platform: at-least-once sends made exactly-once by the key.

Each waiting case is posted with its stored ``Idempotency-Key``; a 200/201 deletes
the envelope (``Outbox.mark_delivered``). Any failure (no network, timeout, 5xx,
429, even 4xx) leaves the case queued with its next attempt set by the backoff
(full jitter, ``Retry-After`` as a floor). The intents that follow a case (the
outbox hands them out only after its 201) go to their own routes: ``destination``
to ``set_destination``, ``closure`` to ``post_closure``; one the platform refuses
for good (a 4xx other than 408/429) is dropped and recorded (``mark_refused``),
never retried forever in front of the case's next intent. A case or closure refused
for its envelope version (``envelope_version_refused``: sealed v1 from a stale directory)
goes to ``sync.reseal``: sealed again from the fresh signed directory, or recorded refused.
A crash between the platform's 201 and the local delete only means one more post with
the same key, which the platform answers without creating a second case.

When the platform itself is out (no answer, a 5xx, 429 or 408 for every case of a
round), the whole device backs off, not each case on its own: nothing is sent until the
pause is over (``platform_backoff``: full jitter up to 5 s, the platform's
``Retry-After`` as a floor), then one case probes. The first answer that is not an
outage ends the pause and makes every waiting case due at once (``Outbox.wake``), so a
device's queue goes out within seconds of the platform's recovery instead of after the
long per-case backoffs each case would have earned meanwhile, and a fleet of devices
probes with one request each per pause instead of its whole queue.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sync._backoff import Backoff
from sync._errors import (
    Conflict,
    HttpStatusError,
    OutboxCorrupt,
    OutboxError,
    PlatformError,
    StorageFull,
    TransportError,
)
from sync.answer_book import AnswerBook
from sync.client import DeviceEvent
from sync.outbox import Outbox, PendingCase
from sync.reseal import VERSION_REFUSED, Resealer, version_refused

if TYPE_CHECKING:
    from sync.direct import DirectRoute

__all__ = [
    "PLATFORM_BACKOFF",
    "AnswerBook",
    "CasePoster",
    "DrainReport",
    "Sender",
    "apply_device_event",
    "follow_answers",
    "platform_out",
]

log = logging.getLogger("sync.sender")


class CasePoster(Protocol):
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


def _final(error: PlatformError) -> bool:
    """A refusal that will not change by sending again (4xx but 408 and 429)."""
    if not isinstance(error, HttpStatusError):
        return False
    return 400 <= error.status < 500 and error.status not in (408, 429)


def platform_out(error: PlatformError) -> bool:
    """The platform, not the case, failed: no answer, a 5xx, 429 or 408."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, HttpStatusError) and (
        error.status >= 500 or error.status in (408, 429)
    )


#: The device's pause while the platform is out, between probes (one case each).
PLATFORM_BACKOFF = Backoff(base=0.5, cap=5.0, max_retry_after=60.0)


@dataclass(frozen=True)
class DrainReport:
    delivered: int
    failures: int
    remaining: int
    seconds: float


class Sender:
    """Posts due cases with ``concurrency`` requests in flight; the outbox stays single-writer."""

    def __init__(
        self,
        outbox: Outbox,
        client: CasePoster,
        *,
        concurrency: int = 4,
        batch: int = 64,
        clock: Callable[[], float] = time.time,
        platform_backoff: Backoff = PLATFORM_BACKOFF,
        direct: DirectRoute | None = None,
        resealer: Resealer | None = None,
    ) -> None:
        self.outbox = outbox
        #: Who seals a case again when the platform refuses its envelope version
        #: (``sync.reseal``); None: such a case is recorded refused.
        self.resealer = resealer
        #: The direct route (docs/disaster.md): used once the platform has been out for
        #: ``direct.unreachable_seconds``; None: cases wait for the platform.
        self.direct = direct
        #: Since when the platform has been out (``clock``; None: it answers).
        self.out_since: float | None = None
        self.client = client
        self.concurrency = max(1, concurrency)
        self.batch = batch
        self._clock = clock
        self.platform_backoff = platform_backoff
        #: Rounds in a row in which the platform was out (0: it answers).
        self.outage_rounds = 0
        #: While the platform is out: nothing is sent before this time (``clock``).
        self.paused_until = 0.0
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sync-send")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, case: PendingCase, depth: int, direct: bool = False) -> PlatformError | None:
        """One row to the platform, in a posting thread: ``direct`` (read in the outbox's
        thread, ``send_due``) says the case reached hospitals by the direct route."""
        if case.kind != "case":
            return self._post_intent(case)
        # Reconciliation: a case that reached hospitals directly says so (audited).
        route = {"route": "direct"} if direct else {}
        try:
            self.client.post_case(
                case.case_id,
                list(case.recipients),
                case.envelope,
                idempotency_key=case.idempotency_key,
                outbox_depth=depth,
                **route,
            )
        except Conflict as exc:
            if exc.hub_code == "case_exists":
                return None  # the platform already holds this case (an earlier attempt)
            return exc
        except PlatformError as exc:
            return exc
        return None

    def _post_intent(self, row: PendingCase) -> PlatformError | None:
        try:
            if row.kind == "destination":
                body = json.loads(row.envelope)
                self.client.set_destination(
                    row.case_id, str(body["hospital_id"]), via=str(body.get("via", "answer"))
                )
            else:
                self.client.post_closure(row.case_id, list(row.recipients), row.envelope)
        except Conflict as exc:
            if row.kind == "closure" and exc.hub_code == "case_closed":
                return None  # an earlier attempt closed it
            return exc
        except PlatformError as exc:
            return exc
        return None

    def send_due(self) -> tuple[int, int]:
        """One round over the due cases; return (delivered, failed).

        While the platform is out, nothing before ``paused_until``, then the oldest
        waiting row alone (whatever its own next attempt time): the probe."""
        now = self._clock()
        probing = self.outage_rounds > 0
        if (
            self.direct is not None
            and self.out_since is not None
            and now - self.out_since >= self.direct.unreachable_seconds
        ):
            # The platform has been out long enough: the hospitals directly (the rows stay
            # for the platform; ``direct.changes`` tells a screen what happened).
            self.direct.round()
        if probing and now < self.paused_until:
            return 0, 0
        due = self.outbox.due(limit=1 if probing else self.batch, now=math.inf if probing else now)
        if not due:
            return 0, 0
        # Reported to the platform's metrics (X-Kyukyu-Outbox-Depth): the unsent cases at
        # the start of this round, each case of the round included. Read here, in the
        # outbox's own thread, not in the posting threads.
        depths = [self.outbox.pending_count()] * len(due)
        # Whether each case reached hospitals directly (reconciliation), read here too.
        direct = [
            self.direct is not None
            and case.kind == "case"
            and self.outbox.direct.took(case.case_id)
            for case in due
        ]
        delivered = failed = 0
        out: list[PlatformError] = []
        posts = self._pool.map(self._post, due, depths, direct)
        for case, error in zip(due, posts, strict=True):
            if error is None:
                self.outbox.mark_delivered(case.case_id, self._clock(), kind=case.kind)
                delivered += 1
            elif (
                case.kind == "destination"
                and getattr(error, "hub_code", None) == "not_accepted"
                and self.direct is not None
                and self.outbox.direct.took(case.case_id)
            ):
                # Reconciling: the hospital's answer (given on the direct route) reaches the
                # platform from the hospital; the destination waits for it.
                self.outbox.mark_failed(case.case_id, "not_accepted", kind=case.kind)
                failed += 1
            elif (
                case.kind in ("case", "closure")
                and getattr(error, "hub_code", None) == VERSION_REFUSED
            ):
                # Sealed from a stale directory: sealed again from a fresh one, or recorded
                # refused; never posted again as it is (the platform refuses it for good).
                version_refused(self.outbox, case, self.resealer)
                failed += 1
            elif case.kind != "case" and _final(error):
                code = getattr(error, "hub_code", None) or error.code
                self.outbox.mark_refused(case.case_id, case.kind, code)
                log.warning("%s refused by the platform (%s); dropped", case.kind, code)
                failed += 1
            else:
                retry_after = error.retry_after if isinstance(error, HttpStatusError) else None
                self.outbox.mark_failed(case.case_id, error.code, retry_after, kind=case.kind)
                log.info("%s send failed (%s); will retry", case.kind, error.code)
                failed += 1
                if platform_out(error):
                    out.append(error)
        if delivered == 0 and out and len(out) == failed:
            self._platform_out(out)
        elif probing:
            log.warning(
                "the platform answers again after %d rounds; sending the queue",
                self.outage_rounds,
            )
            self.outage_rounds = 0
            self.out_since = None
            self.outbox.wake()  # every waiting case is due now, not after its own backoff
        return delivered, failed

    def _platform_out(self, errors: list[PlatformError]) -> None:
        self.outage_rounds += 1
        if self.out_since is None:
            self.out_since = self._clock()
        asked = [
            e.retry_after
            for e in errors
            if isinstance(e, HttpStatusError) and e.retry_after is not None
        ]
        pause = self.platform_backoff.delay(self.outage_rounds, max(asked) if asked else None)
        self.paused_until = self._clock() + pause
        if self.outage_rounds == 1:
            code = getattr(errors[0], "hub_code", None) or errors[0].code
            log.warning("the platform is out (%s); probing with one case at a time", code)

    def next_attempt_at(self) -> float | None:
        """When the next round has something to send (``clock`` time), None if nothing waits."""
        if self.outage_rounds > 0:
            return self.paused_until if self.outbox.pending_count() else None
        return self.outbox.next_due_at()

    def drain(
        self,
        *,
        stop: threading.Event | None = None,
        timeout: float | None = None,
        max_idle_wait: float = 1.0,
    ) -> DrainReport:
        """Send until the outbox is empty, ``stop`` is set or ``timeout`` passes."""
        stop = stop or threading.Event()
        start = time.monotonic()
        delivered = failures = 0
        while not stop.is_set():
            d, f = self.send_due()
            delivered += d
            failures += f
            if self.outbox.pending_count() == 0:
                break
            if timeout is not None and time.monotonic() - start > timeout:
                break
            if d == 0 and f == 0:
                next_at = self.next_attempt_at()
                wait = max_idle_wait if next_at is None else next_at - self._clock()
                stop.wait(min(max(wait, 0.0), max_idle_wait))
        return DrainReport(
            delivered=delivered,
            failures=failures,
            remaining=self.outbox.pending_count(),
            seconds=time.monotonic() - start,
        )


class AnswerSource(Protocol):
    def device_events(
        self,
        after: int = 0,
        stop: threading.Event | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> Iterator[DeviceEvent]: ...


def _time(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return time.time()


def apply_device_event(outbox: AnswerBook, ev: DeviceEvent) -> bool:
    """Apply one event of the device's stream to the outbox; True if it was new news.

    ``answer``: accept/decline (with a decline's reason from the fixed list);
    ``received``: the hospital has the case (病院に到着). Other kinds only move the
    cursor. An event without its fields (or with an answer the outbox does not know)
    is skipped: the cursor moves past it, a warning names its number and the kind of
    fault only, and the stream goes on. A storage fault (full, corrupt) propagates.
    """
    data = ev.data
    try:
        if ev.kind == "answer":
            reason = data.get("reason")
            return outbox.apply_answer_event(
                ev.seq,
                str(data["case_id"]),
                str(data["hospital_id"]),
                str(data["answer"]),
                _time(data.get("answered_at")),
                reason if isinstance(reason, str) else None,
            )
        if ev.kind == "received":
            return outbox.apply_answer_event(
                ev.seq,
                str(data["case_id"]),
                str(data["hospital_id"]),
                "received",
                _time(data.get("received_at")),
            )
    except (StorageFull, OutboxCorrupt):
        raise  # the device's storage, not the event: read again from the cursor later
    except (KeyError, OutboxError) as exc:
        log.warning("device event %s skipped (%s)", ev.seq, type(exc).__name__)
    outbox.skip_device_event(ev.seq)
    return False


def follow_answers(
    client: AnswerSource,
    outbox: AnswerBook,
    *,
    stop: threading.Event | None = None,
    on_news: Callable[[], None] | None = None,
    on_alive: Callable[[], None] | None = None,
    on_availability: Callable[[dict[str, Any]], None] | None = None,
    on_incident: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Apply the device's answer stream to the outbox from its durable cursor.

    The one path answers take on the device (the case flow's ``Delivery`` runs it in
    its follower thread and reconnects around it). Only received/accept/decline,
    hospital id, time and a decline's reason from the hospitals' fixed list are kept
    (free text is not stored on the device). ``on_news`` is called after each new
    answer or receipt, ``on_alive`` whenever the stream shows it is up (a keep-alive
    or an event). ``availability`` events (not numbered, not answers: the cursor does not
    move) go to ``on_availability``, mass-casualty boards (``incident``) to
    ``on_incident``. Returns the number of new answers and receipts when
    the stream ends or soon after ``stop`` is set; the stream's errors (``PlatformError``)
    propagate.
    """
    applied = 0
    for ev in client.device_events(after=outbox.answers_after, stop=stop, on_keepalive=on_alive):
        if on_alive is not None:
            on_alive()
        if ev.kind == "availability":
            if on_availability is not None:
                on_availability(ev.data)
            continue
        if ev.kind == "incident":  # a mass-casualty board, not numbered
            if on_incident is not None:
                on_incident(ev.data)
            continue
        if apply_device_event(outbox, ev):
            applied += 1
            if on_news is not None:
                on_news()
    return applied
