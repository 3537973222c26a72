"""What the direct route delivered, as the device keeps it: ``Outbox.direct``.

The direct route (``sync.direct``, docs/disaster.md) posts waiting outbox rows straight
to their hospitals while the platform is out; the rows stay queued for the platform.
This ledger records, in the outbox's SQLite file, which hospital has which row by that
route (or refused it for good) and each hospital's answer feed cursor. It lives in the
``meta`` table (no table of its own, so an outbox of an earlier release needs no
change): ``direct/<kind>/<case>/<hospital>`` → ``delivered`` | ``refused:<code>`` ("/"
is in no case id) and ``direct_after:<hospital>`` → the last answer number applied.

The outbox builds one over its own connection and transactions (``Outbox._tx``; never a
second connection to the file). The methods taking ``db`` run in the caller's
transaction: the outbox asks ``took_in`` while closing a case and computing its
``DeliveryStatus.route``, and calls ``forget`` when it drops delivered status rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from sync.answer_ledger import Connect, check_answer, store_answer

__all__ = ["DirectLedger"]


def _prefix(case_id: str, kind: str) -> str:
    return f"direct/{kind}/{case_id}/"


def _end(prefix: str) -> str:
    """The first key after every key starting with ``prefix`` (which ends in "/"): the
    range ``prefix <= k < _end(prefix)`` is those keys, and SQLite reads it from the
    primary key's index (``substr(k, ...)`` scanned the whole table)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _cursor(hospital_id: str) -> str:
    return f"direct_after:{hospital_id}"


class DirectLedger:
    """Which hospitals have which outbox rows by the direct route, and their answers."""

    def __init__(self, tx: Connect, read: Connect) -> None:
        self._tx = tx
        self._read = read

    def done(self, case_id: str, kind: str) -> set[str]:
        """The hospitals that have this row by the direct route (or refused it for good)."""
        prefix = _prefix(case_id, kind)
        with self._read() as db:
            rows = db.execute(
                "SELECT k FROM meta WHERE k >= ? AND k < ?", (prefix, _end(prefix))
            ).fetchall()
        return {str(r[0])[len(prefix) :] for r in rows}

    def holders(self) -> set[str]:
        """The hospitals that got at least one case by the direct route (delivered)."""
        prefix = "direct/case/"
        with self._read() as db:
            rows = db.execute(
                "SELECT k FROM meta WHERE k >= ? AND k < ? AND v = 'delivered'",
                (prefix, _end(prefix)),
            ).fetchall()
        return {str(r[0]).rsplit("/", 1)[-1] for r in rows}

    def mark(self, case_id: str, kind: str, hospital_id: str, outcome: str = "delivered") -> None:
        """``hospital_id`` has the row by the direct route (``outcome`` delivered, or
        refused:<code>; the first outcome stays). The row still waits for the platform
        (reconciliation)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING",
                (_prefix(case_id, kind) + hospital_id, outcome[:80]),
            )

    def took(self, case_id: str) -> bool:
        """Whether any hospital got this case by the direct route."""
        with self._read() as db:
            return self.took_in(db, case_id)

    @staticmethod
    def took_in(db: sqlite3.Connection, case_id: str) -> bool:
        """``took``, in the caller's transaction."""
        prefix = _prefix(case_id, "case")
        row = db.execute(
            "SELECT 1 FROM meta WHERE k >= ? AND k < ? AND v = 'delivered' LIMIT 1",
            (prefix, _end(prefix)),
        ).fetchone()
        return row is not None

    @staticmethod
    def delivered_in(db: sqlite3.Connection, case_id: str) -> set[str]:
        """The hospitals that got this case by the direct route (not those that refused
        it), in the caller's transaction."""
        prefix = _prefix(case_id, "case")
        rows = db.execute(
            "SELECT k FROM meta WHERE k >= ? AND k < ? AND v = 'delivered'",
            (prefix, _end(prefix)),
        ).fetchall()
        return {str(r[0])[len(prefix) :] for r in rows}

    @staticmethod
    def forget(db: sqlite3.Connection, case_ids: Iterable[str], kinds: Iterable[str]) -> None:
        """Drop what the direct route delivered of these cases' rows (their status rows
        go), in the caller's transaction. The hospitals' answer cursors stay."""
        ids = list(case_ids)
        for kind in kinds:
            db.executemany(
                "DELETE FROM meta WHERE k >= ? AND k < ?",
                [(p, _end(p)) for p in (_prefix(i, kind) for i in ids)],
            )

    def apply_answer(
        self,
        hospital_id: str,
        seq: int,
        case_id: str,
        answer: str,
        at: float,
        reason: str | None = None,
    ) -> bool:
        """One answer from ``hospital_id``'s direct feed, with that feed's cursor
        (``after``), atomically; False if already seen. ``seq`` 0: an answer of the
        route itself (the direct post's receipt), which moves no cursor."""
        reason = check_answer(seq, answer, reason)
        cursor = _cursor(hospital_id)
        with self._tx() as db:
            row = db.execute("SELECT v FROM meta WHERE k = ?", (cursor,)).fetchone()
            if seq and row is not None and int(row[0]) >= seq:
                return False
            store_answer(db, case_id, hospital_id, answer, at, reason)
            if seq:
                db.execute(
                    "INSERT INTO meta (k, v) VALUES (?, ?)"
                    " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                    (cursor, str(seq)),
                )
        return True

    def after(self, hospital_id: str) -> int:
        """The last answer number applied from ``hospital_id``'s direct feed."""
        with self._read() as db:
            row = db.execute("SELECT v FROM meta WHERE k = ?", (_cursor(hospital_id),)).fetchone()
        return 0 if row is None else int(row[0])
