"""What one hub process holds: settings, engine, event bus, keys, verifier, medical source."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from hub_server.core.certs import CertificateVerifier
from hub_server.core.config import Settings
from hub_server.core.errors import HubError
from hub_server.core.events import EventBus
from hub_server.core.security import HubKey

__all__ = ["HubState"]


@dataclass
class HubState:
    settings: Settings
    engine: Engine
    hub_key: HubKey
    bus: EventBus
    bookkeeping: Engine | None = None
    verifier: CertificateVerifier | None = None
    medical_source: Any = None
    _revoked_cache: tuple[float, frozenset[int]] = (0.0, frozenset())
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def bookkeeping_connection(self) -> Connection:
        """An autocommit connection for nonces and idempotency claims (one round trip each;
        on PostgreSQL without waiting for the WAL flush: bookkeeping, not medical data)."""
        engine = self.bookkeeping or self.engine.execution_options(isolation_level="AUTOCOMMIT")
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
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

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
                    raise HubError(
                        503,
                        "medical_source_unavailable",
                        "no medical source is installed",
                        "医療情報の取得先が利用できません。",
                    )
                self.medical_source = open_source(self.settings.medical_url)
            return self.medical_source
