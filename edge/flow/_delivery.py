"""Background work of the flow: sealed cases and intents leave the outbox, answers come back.

Two daemon threads: the sender posts due cases and the intents queued after them
(destination, closure; ``sync.sender.Sender``: backoff, Idempotency-Key, in order
per case) and the follower applies the device's answer stream (receipts, answers
with their reasons) to the outbox (``sync.sender.follow_answers``, the one path answers
take; this thread only reconnects around it). Both report to the flow through callbacks;
neither touches patient data (the outbox holds sealed envelopes and non-personal
statuses only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sync import PlatformError
from sync.availability import AvailabilityBook
from sync.direct import DirectRoute
from sync.reseal import Resealer
from sync.sender import Sender, follow_answers

from ._ports import CaseOutbox, Platform

__all__ = ["Delivery"]

log = logging.getLogger("edge.flow.delivery")


class Delivery:
    """Sends waiting cases and follows answers until ``close``."""

    def __init__(
        self,
        outbox: CaseOutbox,
        platform: Platform,
        *,
        on_sent: Callable[[bool], None],
        on_answer: Callable[[], None],
        retry_s: float = 1.0,
        availability: AvailabilityBook | None = None,
        on_availability: Callable[[], None] | None = None,
        direct: DirectRoute | None = None,
        resealer: Resealer | None = None,
    ) -> None:
        self.outbox = outbox
        # A case refused for its envelope version is sealed again by the flow (sync.reseal).
        self.resealer = resealer
        # The direct route (docs/disaster.md): the sender uses it once the platform has
        # been out for its threshold; what it delivers and hears shows like answers.
        self.direct = direct
        self.platform = platform
        self._on_sent = on_sent
        self._on_answer = on_answer
        # 応需状況: pushed on the same stream; caught up (GET) once each connection is up.
        self._book = availability
        self._on_availability = on_availability or (lambda: None)
        self.on_incident: Callable[[dict[str, object]], None] | None = None
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._send_loop, "flow-send"), (self._follow_loop, "flow-answers")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def kick(self) -> None:
        """A case was queued (or the network may be back): try now."""
        self._kick.set()

    def close(self) -> None:
        self._stop.set()
        self._kick.set()
        for t in self._threads:
            t.join(5)

    def _send_loop(self) -> None:
        sender = Sender(
            self.outbox,  # type: ignore[arg-type]
            self.platform,
            concurrency=2,
            direct=self.direct,
            resealer=self.resealer,
        )
        try:
            while not self._stop.is_set():
                self._kick.wait(self._retry_s)
                self._kick.clear()
                if self._stop.is_set() or self.outbox.pending_count() == 0:
                    continue
                changes = self.direct.changes if self.direct is not None else 0
                delivered, failed = sender.send_due()
                if self.direct is not None and self.direct.changes != changes:
                    self._on_answer()  # delivered directly, or a hospital answered directly
                if delivered:
                    self._on_sent(True)
                elif failed:
                    self._on_sent(False)
        except Exception:  # a broken outbox must not take the screen down
            log.exception("sender stopped")
        finally:
            sender.close()
            if self.direct is not None:
                self.direct.close()

    def _follow_loop(self) -> None:
        failures = 0

        caught_up = False

        def reachable() -> None:
            # The stream is up again (its first keep-alive): what waits leaves now, not
            # after the backoff the failed attempts earned while the network was down.
            nonlocal failures, caught_up
            if failures:
                failures = 0
                self.outbox.wake()
                self.kick()
            if not caught_up:  # subscribed: what changed before is read, later is pushed
                caught_up = True
                self._catch_up_availability()

        while not self._stop.is_set():
            wait = self._retry_s
            caught_up = False
            try:
                follow_answers(
                    self.platform,
                    self.outbox.answers,
                    stop=self._stop,
                    on_news=self._on_answer,
                    on_alive=reachable,
                    on_availability=self._pushed_availability,
                    on_incident=self._pushed_incident,
                )
            except PlatformError as exc:
                failures += 1
                # Back off (the platform rate-limits reconnects); honour its Retry-After.
                wait = min(10.0, self._retry_s * 2 ** min(failures - 1, 4))
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(retry_after, (int, float)) and retry_after > 0:
                    wait = max(wait, float(retry_after))
                log.info("answer stream interrupted (%s); reconnecting in %.1fs", exc.code, wait)
            except Exception:
                failures += 1
                log.exception("answer stream failed; reconnecting")
            self._availability_down()
            self._stop.wait(wait)

    def _catch_up_availability(self) -> None:
        book = self._book
        if book is None:
            return
        try:
            page = self.platform.availability(after=book.version)
        except PlatformError as exc:  # the pushes still come; the next connection retries
            log.info("availability catch-up failed (%s)", exc.code)
            return
        docs = page.get("hospitals")
        book.apply_all(docs if isinstance(docs, list) else (), page.get("version"))
        book.live = True
        book.save()
        self._on_availability()

    def _pushed_availability(self, doc: dict[str, object]) -> None:
        book = self._book
        if book is not None and book.apply(doc):
            book.save()
            self._on_availability()

    def _pushed_incident(self, board: dict[str, object]) -> None:
        # ``edge.flow._incident.IncidentDesk`` sets ``on_incident`` when it is used.
        if self.on_incident is not None:
            self.on_incident(board)

    def _availability_down(self) -> None:
        book = self._book
        if book is not None and book.live:
            book.live = False
            self._on_availability()
