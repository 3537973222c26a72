"""What one hub process holds: settings, engine, event bus, keys, verifier, medical source."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from door import RateLimiter, Rates
from hub_server.core.certs import CertificateVerifier
from hub_server.core.config import Settings
from hub_server.core.errors import Unavailable
from hub_server.core.events import EventBus
from hub_server.core.metrics import HubMetrics
from hub_server.core.outage import OutageMonitor
from hub_server.core.security import HubKey
from hub_server.crud.identities import DeviceKeyCache

__all__ = ["HubState"]

log = logging.getLogger("hub_server.audit")

#: How long the background chainer lets pending audit rows gather before a round: every
#: case of that moment joins one round (one head lock, one transaction). Rounds, not rows,
#: are what cost: 50 ms made the three workers of a loaded hub spend about a tenth of their
#: CPU on chaining; 200 ms batches four times as many rows per round.
_CHAIN_PAUSE_SECONDS = 0.2
_CHAIN_BATCH = 1000


@dataclass
class HubState:
    settings: Settings
    engine: Engine
    hub_key: HubKey
    bus: EventBus
    autocommit: Engine | None = None
    verifier: CertificateVerifier | None = None
    medical_source: Any = None
    rates: Rates = field(init=False)
    #: Outages of the database (``core.outage``): one log line per change, 503s, a probe.
    outage: OutageMonitor = field(init=False)
    metrics: HubMetrics = field(default_factory=HubMetrics)
    #: Case submissions admitted and not yet answered (admission control, event loop only).
    pending_cases: int = 0
    case_rate: Any = None  # api.admission's answer-rate tracker
    stream_revocations: Any = None  # api.event_streams' per-process revocation cache
    #: core.events.leases.StreamLeases: the stream cap across processes (PostgreSQL).
    stream_leases: Any = None
    case_writer: Any = None  # services.case_writer's group commit (PostgreSQL, made on use)
    roster_gaps: Any = None  # services.device_roster's restore gaps read off the chain (on use)
    #: Devices' keys for the case hot path (used on PostgreSQL only).
    device_keys: DeviceKeyCache = field(default_factory=DeviceKeyCache)
    _revoked_cache: tuple[float, frozenset[int]] = (0.0, frozenset())
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _chain_lock: threading.Lock = field(default_factory=threading.Lock)
    _chain_again: bool = False
    _chainer_running: bool = False
    _closed: bool = False

    def __post_init__(self) -> None:
        s = self.settings
        self.rates = Rates(
            unsigned=RateLimiter(s.unsigned_rate, s.unsigned_burst),
            auth_failures=RateLimiter(s.auth_failure_rate, s.auth_failure_burst),
            identity=RateLimiter(s.identity_rate, s.identity_burst),
        )
        self.outage = OutageMonitor(self._probe_database, gauge=self.metrics.outage)

    def _probe_database(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def autocommit_connection(self) -> Connection:
        """An autocommit connection for nonces and idempotency claims (one round trip each;
        on PostgreSQL without waiting for the WAL flush: bookkeeping, not medical data)."""
        engine = self.autocommit
        if engine is None:  # SQLite: made once (an option engine copies the event hooks)
            engine = self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return engine.connect()

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """One write transaction on a Core connection (commit on exit, rollback on error).

        SQLite has one writer: an in-process lock queues the writers of this process (a
        fast hand-over instead of SQLite's busy handler, which sleeps in steps of up to
        100 ms) and ``BEGIN IMMEDIATE`` takes the write lock at once (no read-to-write
        upgrade that could fail). Other processes still wait through ``busy_timeout``.
        """
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        with (
            self._write_lock,
            self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite may have rolled back already (a full disk, an I/O error): a
                # second ROLLBACK would fail and hide why.
                if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                    conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    def chain_audit(self) -> int:
        """Link every pending audit row into the chain now (waits for the head lock)."""
        from hub_server.core.audit import chain_pending

        total = 0
        while True:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Safe to lose in a database crash: the pending rows and the old head
                    # come back together (WAL order) and are chained again.
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                n = chain_pending(conn, batch=_CHAIN_BATCH)
            total += n
            if n < _CHAIN_BATCH:  # nothing was left behind: no second, empty round
                return total

    def chain_audit_soon(self) -> None:
        """Chain pending audit rows on a background thread (one per process at a time,
        so rows committed meanwhile are chained in one batch under one head lock)."""
        with self._chain_lock:
            self._chain_again = True
            if self._chainer_running:
                return
            self._chainer_running = True
        threading.Thread(target=self._chainer, name="kyukyu-audit-chainer", daemon=True).start()

    def close(self) -> None:
        """At shutdown: chain what is pending (best effort; a pending row is chained by
        the next process otherwise) and stop the background chainer quietly."""
        self.outage.close()
        with self._chain_lock:
            self._closed = True
            pending = self._chainer_running
        if pending:
            try:
                self.chain_audit()
            except Exception as exc:  # the rows stay pending, durable
                log.warning("audit chaining at shutdown failed (%s)", type(exc).__name__)

    def _chainer(self) -> None:
        while True:
            # Let the cases of the next moment join this round: one head lock and one
            # transaction for all of them, not one per case (the chain lags by this much).
            time.sleep(_CHAIN_PAUSE_SECONDS)
            with self._chain_lock:
                if self._closed:  # shut down: ``close`` chained what was pending
                    self._chainer_running = False
                    return
                if not self._chain_again:
                    self._chainer_running = False
                    return
                self._chain_again = False
            try:
                self.chain_audit()
            except Exception as exc:  # rows stay pending: the next case or reader chains them
                log.warning("audit chaining failed (%s); will retry", type(exc).__name__)

    def revoked_serials(self) -> frozenset[int]:
        """Revoked serials from the ingested CRLs (cached a few seconds)."""
        from hub_server import crud

        at, cached = self._revoked_cache
        if time.monotonic() - at < 5.0:
            return cached
        with self.session() as session:
            fresh = crud.revoked_serials(session)
        self._revoked_cache = (time.monotonic(), fresh)
        return fresh

    def invalidate_revocation_cache(self) -> None:
        self._revoked_cache = (0.0, frozenset())

    def medical(self) -> Any:
        """The medical source (opened on first use so the hub starts without it)."""
        with self._lock:
            if self.medical_source is None:
                try:
                    from hub_server import medical
                except ImportError:
                    medical = None  # type: ignore[assignment]
                open_source = getattr(medical, "open_source", None)
                if open_source is None:
                    raise Unavailable(
                        "medical_source_unavailable",
                        "no medical source is installed",
                        "医療情報の取得先が利用できません。",
                    )
                self.medical_source = open_source(self.settings.medical_url)
            return self.medical_source
