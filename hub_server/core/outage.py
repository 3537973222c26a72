"""Outages answered honestly: the database down, its disk full, the pool exhausted.

A request that fails because the database cannot be used is not the caller's fault and
not a bug of the hub: it is answered with 503, ``Retry-After`` and the one error body
(``errbase.error_json``) with a code that says which outage (``classify``):

- ``database_unavailable``: no connection (refused, reset, the server shutting down or
  starting up), Retry-After 2 s;
- ``storage_full``: the database's disk is full (PostgreSQL SQLSTATE 53100, SQLite
  ``SQLITE_FULL``, or ``ENOSPC`` from the hub's own files), Retry-After 5 s;
- ``database_busy``: no pooled connection within the pool's timeout, a lock or statement
  timeout, a deadlock, Retry-After 1 s.

Clients (``sync``'s device sender and hospital receiver) wait at least that long and then
try once more (a device probes with one case, not its whole queue).

``OutageMonitor`` (one per process) writes one log line when an outage starts (or its
kind changes) and one when it ends, never one per request, and keeps the gauge
``kyukyu_hub_outage``. The end is seen by a probe thread (``SELECT 1`` once a second while
the database is unavailable or busy) or, for a full disk, by the next write the hub
commits (a 2xx answer to a POST: ``write_succeeded``).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hub_server.core.errors import Unavailable

__all__ = [
    "DATABASE_BUSY",
    "DATABASE_UNAVAILABLE",
    "KINDS",
    "STORAGE_FULL",
    "OutageError",
    "OutageMonitor",
    "classify",
]

log = logging.getLogger("hub_server.outage")

DATABASE_UNAVAILABLE = "database_unavailable"
STORAGE_FULL = "storage_full"
DATABASE_BUSY = "database_busy"
KINDS = (DATABASE_UNAVAILABLE, STORAGE_FULL, DATABASE_BUSY)

_RETRY_AFTER = {DATABASE_UNAVAILABLE: 2, STORAGE_FULL: 5, DATABASE_BUSY: 1}
_MESSAGES = {
    DATABASE_UNAVAILABLE: (
        "the platform's database is unavailable; send again after Retry-After",
        "プラットフォームのデータベースが一時的に利用できません。自動で再送します。",
    ),
    STORAGE_FULL: (
        "the platform's storage is full; send again after Retry-After",
        "プラットフォームの記憶領域が一杯です。自動で再送します。",
    ),
    DATABASE_BUSY: (
        "the platform's database is busy; send again after Retry-After",
        "プラットフォームが混雑しています。自動で再送します。",
    ),
}

# PostgreSQL SQLSTATEs: 53100 disk_full, 53xxx insufficient resources (out of memory,
# too many connections), 08xxx connection exceptions, 57P0x the server shutting down or
# starting, 57014 query_canceled (statement timeout), 55P03 lock_not_available,
# 40P01 deadlock_detected, 40001 serialization_failure.
_PG_FULL = {"53100"}
_PG_BUSY = {"57014", "55P03", "40P01", "40001", "53200", "53300", "53400"}


def _sqlstate(orig: Any) -> str | None:
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def _classify_one(exc: BaseException) -> tuple[str, bool] | None:
    """(kind, specific): specific when a code or type names the outage, not only the
    class of a driver error."""
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - the hub always has SQLAlchemy
        return None
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection within the timeout
        return DATABASE_BUSY, True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return STORAGE_FULL, True
    orig: Any = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    state = _sqlstate(orig)
    if state is not None:
        if state in _PG_FULL:
            return STORAGE_FULL, True
        if state in _PG_BUSY:
            return DATABASE_BUSY, True
        if state.startswith("08") or state.startswith("57P"):
            return DATABASE_UNAVAILABLE, True
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary == 13:  # SQLITE_FULL
            return STORAGE_FULL, True
        if primary in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
            return DATABASE_BUSY, True
        if primary in (10, 14, 26):  # SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_NOTADB
            return DATABASE_UNAVAILABLE, True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DATABASE_UNAVAILABLE, True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return DATABASE_UNAVAILABLE, False
    module = type(orig).__module__
    if module.startswith("psycopg") and type(orig).__name__ in (
        "OperationalError",
        "InterfaceError",
    ):
        return DATABASE_UNAVAILABLE, False
    return None


def classify(exc: BaseException) -> str | None:
    """The outage ``exc`` shows (one of ``KINDS``), or None for any other error. Its causes
    and contexts are looked at too (a failed rollback after a full disk is that full
    disk): the first error whose code names an outage wins, else the first driver error
    of the connection kind."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    generic: str | None = None
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found = _classify_one(current)
        if found is not None:
            kind, specific = found
            if specific:
                return kind
            generic = generic or kind
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return generic


class OutageError(Unavailable):
    """503 with ``Retry-After``: the database cannot be used now (``classify``)."""

    def __init__(self, kind: str) -> None:
        en, ja = _MESSAGES[kind]
        super().__init__(kind, en, ja)
        self.kind = kind
        self.retry_after = _RETRY_AFTER[kind]
        self.headers = {"Retry-After": str(self.retry_after)}


class OutageMonitor:
    """The outage state of one hub process: a log line per change, a gauge, a probe."""

    def __init__(
        self,
        probe: Callable[[], None] | None = None,
        *,
        gauge: Any = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._gauge = gauge
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.kind: str | None = None
        self.since = 0.0
        self.refused = 0  # requests answered 503 during the current outage
        self._prober: threading.Thread | None = None
        self._closed = False
        if gauge is not None:
            for kind in KINDS:
                gauge.labels(kind=kind).set(0)

    def report(self, exc: BaseException) -> OutageError | None:
        """The 503 that answers ``exc`` (and the state noted), or None if it is no outage."""
        kind = classify(exc)
        if kind is None:
            return None
        self.started(kind)
        return OutageError(kind)

    def started(self, kind: str) -> None:
        with self._lock:
            self.refused += 1
            if self.kind == kind:
                return
            previous, self.kind = self.kind, kind
            self.since = self._clock()
            self.refused = 1
            if self._gauge is not None:
                for k in KINDS:
                    self._gauge.labels(kind=k).set(1 if k == kind else 0)
            start_probe = self._probe is not None and kind != STORAGE_FULL
            if start_probe and self._prober is None and not self._closed:
                self._prober = threading.Thread(
                    target=self._probe_loop, name="kyukyu-outage-probe", daemon=True
                )
                self._prober.start()
        if previous is None:
            log.warning(
                "outage started: %s; answering 503 with Retry-After", kind,
                extra={"outage": kind, "state": "started"},
            )  # fmt: skip
        else:
            log.warning(
                "outage changed from %s to %s", previous, kind,
                extra={"outage": kind, "state": "changed", "previous": previous},
            )  # fmt: skip

    def write_succeeded(self) -> None:
        """A write was committed: the disk takes data again (ends ``storage_full``)."""
        if self.kind is not None:
            self.recovered()

    def recovered(self) -> None:
        with self._lock:
            if self.kind is None:
                return
            kind, self.kind = self.kind, None
            seconds = self._clock() - self.since
            refused = self.refused
            if self._gauge is not None:
                for k in KINDS:
                    self._gauge.labels(kind=k).set(0)
        log.warning(
            "outage ended: %s after %.1f s (%d requests answered 503)", kind, seconds, refused,
            extra={"outage": kind, "state": "ended", "seconds": round(seconds, 3),
                   "refused": refused},
        )  # fmt: skip

    def close(self) -> None:
        self._closed = True
        self._stop.set()

    def _probe_loop(self) -> None:
        while not self._stop.wait(self._interval):
            kind = self.kind
            if kind is None or kind == STORAGE_FULL:
                continue  # nothing to probe; a committed write ends a full disk
            try:
                assert self._probe is not None
                self._probe()
            except Exception as exc:
                now = classify(exc)
                if now is not None and now != kind:
                    self.started(now)
                continue
            self.recovered()
