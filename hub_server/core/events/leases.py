"""``StreamLeases``: the cap on event streams per identity, across every hub process and
host sharing one PostgreSQL.

An open stream holds one of ``limit`` slots of its identity: a PostgreSQL session-level
advisory lock whose 64-bit key is a hash of the identity and the slot number
(``pg_try_advisory_lock``, never waited for). Every process holds its streams' slots on
one connection of its own, so a process that dies (kill -9, a lost host) frees its slots
the moment PostgreSQL notices the connection gone, with nothing to expire or clean up.
No table, no migration; the locks are invisible to every other query.

After the database restarts, the connection is made again and the process takes back the
slots its open streams hold; a slot another process took in between stays with it (the
identity may briefly hold one stream more than its limit, until one of them ends).
SQLite keeps the count in the process (``EventBus.subscribe``): one host.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from hub_server.core.errors import Unavailable

__all__ = ["StreamLeases", "lease_key"]

log = logging.getLogger("hub_server.events")


def lease_key(recipient: str, slot: int) -> int:
    """The advisory-lock key of ``recipient``'s slot ``slot``: a signed 64-bit integer
    (collisions between identities are as likely as between 64-bit hashes)."""
    digest = hashlib.sha256(f"kyukyu-stream-slot\n{recipient}\n{slot}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StreamLeases:
    """Slots of stream caps held on one PostgreSQL connection of this process (blocking
    calls: run them off the event loop)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: Any = None
        self._lock = threading.Lock()
        #: (recipient, slot) this process holds.
        self._held: set[tuple[str, int]] = set()

    def _connection(self) -> Any:
        import psycopg

        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:  # lost (database restart): take back what our streams hold
            log.warning("stream leases: connection lost; taking the slots back")
            conn.close()
        self._conn = conn = psycopg.connect(
            self._conninfo, autocommit=True, application_name="kyukyu-hub-stream-leases"
        )
        for recipient, slot in sorted(self._held):
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (lease_key(recipient, slot),))
            row = got.fetchone()
            if not (row and row[0]):
                self._held.discard((recipient, slot))
        return conn

    def acquire(self, recipient: str, limit: int) -> int | None:
        """A free slot of ``recipient`` (now held by this process), or None when all
        ``limit`` are held by streams of any process. ``Unavailable`` (503) when the
        database cannot be reached."""
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    conn = self._connection()
                    for slot in range(limit):
                        if (recipient, slot) in self._held:
                            continue  # ours already (a session lock would take it again)
                        row = conn.execute(
                            "SELECT pg_try_advisory_lock(%s)", (lease_key(recipient, slot),)
                        ).fetchone()
                        if row and row[0]:
                            self._held.add((recipient, slot))
                            return slot
                    return None
                except psycopg.OperationalError:
                    if attempt == 2:
                        raise Unavailable(
                            "database_unavailable",
                            "the database is not reachable; retry shortly",
                            "データベースに接続できません。しばらくしてから再試行してください。",
                        ) from None
            return None  # pragma: no cover - the loop returns or raises

    def release(self, recipient: str, slot: int) -> None:
        """Give the slot back (best effort: a lost connection freed it already)."""
        with self._lock:
            if (recipient, slot) not in self._held:
                return
            self._held.discard((recipient, slot))
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                return
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lease_key(recipient, slot),))
            except Exception as exc:  # the connection died: the lock went with it
                log.warning("stream leases: release failed (%s)", type(exc).__name__)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
