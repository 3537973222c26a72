"""Group commit of case submissions (PostgreSQL): one durable transaction for every case
that arrived while the previous one was being written.

Each hub process has one writer thread. A request thread hands its case over and waits;
the writer takes every case waiting at that moment (up to ``max_batch``), stores them in
one statement (``crud.case_batch``) and commits once, then answers each waiting thread.
The guarantee is the one of a single case: a 201 only after the commit that holds the
case, its events and its audit row; a device revoked before its batch is written gets
403 ``revoked`` (read for each batch). If the batch fails for any reason (a replayed nonce,
a reused Idempotency-Key, an unknown recipient, a lost connection), it is rolled back
and each case is then stored on its own (``store_one``), so every case gets its own
answer and one bad case never fails another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from sqlalchemy import Connection, Engine

from hub_server.core.errors import revoked_caller
from hub_server.core.events import PendingEvent
from hub_server.crud.case_batch import CaseRow, insert_cases_in_one_statement
from hub_server.crud.identities import revoked_devices

__all__ = ["CaseWriter"]

log = logging.getLogger("hub_server.cases")

StoreOne = Callable[[Connection], list[PendingEvent]]


class _Reply(Protocol):
    """Where the writer puts a case's answer: a thread's ``Future`` or a ``_LoopReply``."""

    def done(self) -> bool: ...
    def set_result(self, result: list[PendingEvent]) -> None: ...
    def set_exception(self, exception: BaseException) -> None: ...


_Item = tuple[CaseRow, StoreOne, _Reply]


class _LoopReply:
    """A case's answer handed to an event loop's future (one ``call_soon_threadsafe``;
    lighter than a thread ``Future`` with its condition variable and callbacks)."""

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

    def store(self, row: CaseRow, store_one: StoreOne) -> list[PendingEvent]:
        """Store one case durably (blocks until its commit); its recipients' events.

        ``store_one(conn)`` stores this case alone in the open transaction ``conn``; it
        is used when the batch could not be written and raises the case's own error.
        """
        done: Future[list[PendingEvent]] = Future()
        self._queue.put((row, store_one, done))
        self._start()
        return done.result()

    async def store_async(self, row: CaseRow, store_one: StoreOne) -> list[PendingEvent]:
        """``store`` for the event loop: the loop awaits the commit instead of a thread.

        The case is stored even if the awaiting task is cancelled (as a request thread
        would go on): once handed over, a case is never withdrawn.
        """
        loop = asyncio.get_running_loop()
        reply = _LoopReply(loop, loop.create_future())
        self._queue.put((row, store_one, reply))
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
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)

    def _write(self, batch: list[_Item]) -> None:
        # Revocation is read for every batch, not taken from the authentication: the hot
        # path of case posts knows devices' keys from a cache (``DeviceKeyCache``). The
        # batch statement reads it itself and fails when a device is revoked; the cases
        # are then stored one by one, each after its own check.
        try:
            with self._engine.begin() as conn:
                results = insert_cases_in_one_statement(conn, [row for row, _, _ in batch])
        except Exception as exc:  # one by one below: each case gets its own answer
            log.debug("case batch of %d rolled back (%s)", len(batch), type(exc).__name__)
        else:
            self.batches += 1
            self.cases += len(batch)
            for (_, _, done), events in zip(batch, results, strict=True):
                done.set_result(events)
            return
        for row, store_one, done in batch:
            try:
                with self._engine.begin() as conn:
                    if revoked_devices(conn, {row.device_id}):
                        done.set_exception(revoked_caller("device"))
                        continue
                    events = store_one(conn)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                self.batches += 1
                self.cases += 1
                done.set_result(events)
