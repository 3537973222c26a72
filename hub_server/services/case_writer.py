"""Group commit of case submissions (PostgreSQL): one durable transaction for every case
that arrived while the previous one was being written.

Each hub process has one writer thread. The event loop hands a case over (``store``)
and awaits its answer; the writer takes every case waiting at that moment (up to
``max_batch``), stores them in one statement (``crud.case_batch``) and commits once, then
answers each case. The guarantee is the one of a single case: a 201 only after the
commit that holds the case, its events and its audit row; a device revoked before its
batch is written is refused (the statement reads revocation itself). If the batch fails
for any reason (a replayed nonce, a reused Idempotency-Key, an unknown recipient, a
revoked device, a lost connection), it is rolled back and each case is then stored on
its own by the same statement (a batch of one; when that fails too, a revoked device
is told so first: 403 ``revoked``), so every case gets its own answer
(``crud.case_batch.UniqueTaken`` or ``BatchRefused``, which the caller turns into its
error) and one bad case never fails another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading

from sqlalchemy import Engine

from hub_server.core.errors import revoked_caller
from hub_server.core.events import PendingEvent
from hub_server.crud.case_batch import (
    BatchRefused,
    CaseRow,
    UniqueTaken,
    insert_cases_in_one_statement,
)
from hub_server.crud.identities import revoked_devices

__all__ = ["CaseWriter"]

log = logging.getLogger("hub_server.cases")


class _Reply:
    """A case's answer handed to the waiting event loop's future (one
    ``call_soon_threadsafe``)."""

    __slots__ = ("_settled", "loop", "waiter")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[list[PendingEvent]]
    ) -> None:
        self.loop = loop
        self.waiter = waiter
        self._settled = False

    def done(self) -> bool:
        return self._settled

    def set_result(self, result: list[PendingEvent]) -> None:
        self._settle(result, None)

    def set_exception(self, exception: BaseException) -> None:
        self._settle(None, exception)

    def _settle(self, result: list[PendingEvent] | None, exc: BaseException | None) -> None:
        if self._settled:
            raise RuntimeError("a case is answered once")
        self._settled = True
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            self.loop.call_soon_threadsafe(self._deliver, result, exc)

    def _deliver(self, result: list[PendingEvent] | None, exc: BaseException | None) -> None:
        if self.waiter.cancelled():
            return
        if exc is not None:
            self.waiter.set_exception(exc)
        else:
            self.waiter.set_result(result or [])


_Item = tuple[CaseRow, _Reply]


class CaseWriter:
    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Batches written and cases in them (for tests and the benchmark).
        self.batches = 0
        self.cases = 0

    async def store(self, row: CaseRow) -> list[PendingEvent]:
        """Store one case durably; its recipients' events once it is committed.

        The case is stored even if the awaiting task is cancelled: once handed over, a
        case is never withdrawn. Raises what storing it alone raised
        (``crud.case_batch.UniqueTaken``, ``BatchRefused``, a database error).
        """
        loop = asyncio.get_running_loop()
        reply = _Reply(loop, loop.create_future())
        self._queue.put((row, reply))
        self._start()
        return await reply.waiter

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kyukyu-case-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except BaseException as exc:  # never leave a request waiting
                for _, reply in batch:
                    if not reply.done():
                        reply.set_exception(exc)

    def _write(self, batch: list[_Item]) -> None:
        if len(batch) > 1:
            try:
                with self._engine.begin() as conn:
                    results = insert_cases_in_one_statement(conn, [row for row, _ in batch])
            except Exception as exc:  # one by one below: each case gets its own answer
                log.debug("case batch of %d rolled back (%s)", len(batch), type(exc).__name__)
            else:
                self.batches += 1
                self.cases += len(batch)
                for (_, reply), events in zip(batch, results, strict=True):
                    reply.set_result(events)
                return
        for row, reply in batch:
            try:
                events = self._store_alone(row)
            except BaseException as exc:
                reply.set_exception(exc)
            else:
                self.batches += 1
                self.cases += 1
                reply.set_result(events)

    def _store_alone(self, row: CaseRow) -> list[PendingEvent]:
        try:
            with self._engine.begin() as conn:
                (events,) = insert_cases_in_one_statement(conn, [row])
        except (UniqueTaken, BatchRefused):
            # A revoked device is told so before anything else (a replay, a taken key),
            # as the authentication of an uncached key would have.
            with self._engine.connect() as conn:
                if revoked_devices(conn, {row.device_id}):
                    raise revoked_caller("device") from None
            raise
        return events
