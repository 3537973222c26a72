"""The revocation snapshot's number as the device keeps it: ``Outbox.revocation_floor``.

A ``sync.client.RevocationFloor`` kept in the outbox's SQLite file (``meta`` key
``revocation_version``), so a restarted device still refuses an older snapshot
(``SnapshotRollback``, docs/hub.md). The outbox builds one over its own connection
and transactions (``Outbox._tx``; never a second connection to the file).
"""

from __future__ import annotations

from sync._errors import SnapshotRollback
from sync.answer_ledger import Connect

__all__ = ["StoredRevocationFloor"]


class StoredRevocationFloor:
    """The highest revocation snapshot version accepted, durable (``RevocationFloor``)."""

    def __init__(self, tx: Connect, read: Connect) -> None:
        self._tx = tx
        self._read = read

    def revocation_version(self) -> int:
        """The highest revocation snapshot version accepted so far (0: none)."""
        with self._read() as db:
            row = db.execute("SELECT v FROM meta WHERE k = 'revocation_version'").fetchone()
        return 0 if row is None else int(row[0])

    def accept_revocation_version(self, version: int) -> None:
        """Remember ``version``; ``SnapshotRollback`` (nothing stored) if lower than the last."""
        with self._tx() as db:
            row = db.execute("SELECT v FROM meta WHERE k = 'revocation_version'").fetchone()
            if row is not None and int(row[0]) > version:
                raise SnapshotRollback(f"version {version} < {int(row[0])}")
            db.execute(
                "INSERT INTO meta (k, v) VALUES ('revocation_version', ?)"
                " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (str(version),),
            )
