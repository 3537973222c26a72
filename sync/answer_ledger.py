"""The hospitals' answers as the device keeps them: ``Outbox.answers``.

The ``AnswerBook`` (``sync.answer_book``, the seam ``sync.sender.follow_answers``
writes through) kept in the outbox's SQLite file: the ``answers`` table (hospital id,
received/accept/decline, time, a decline's reason from the fixed list) and the device
answer stream's durable cursor (``meta`` key ``answers_after``). The outbox builds
one over its own connection and transactions (``Outbox._tx``; never a second
connection to the file) and reads the same table for its ``DeliveryStatus``.

Not in ``sync.answer_book``: that module imports nothing, so the device's first
screen can load the case flow's ports without SQLite (docs/edge-ui.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from sync._errors import OutboxError
from sync.reasons import DECLINE_REASONS

__all__ = ["ANSWERS", "AnswerLedger", "Connect", "check_answer", "store_answer"]

#: The answers a device keeps: a receipt (病院に到着) and the hospital's decision.
ANSWERS = ("accept", "decline", "received")

#: A transaction (``Outbox._tx``) or a locked read (``Outbox._read``) on the outbox's
#: one connection.
Connect = Callable[[], AbstractContextManager[sqlite3.Connection]]


def check_answer(seq: int, answer: str, reason: str | None) -> str | None:
    """Refuse an answer the device does not know or a number out of range
    (``OutboxError``); return the reason kept: a decline's, and only one of
    ``sync.reasons.DECLINE_REASONS`` (any other text becomes その他: free text is not
    kept on the device)."""
    if answer not in ANSWERS:
        raise OutboxError(f"unknown answer {answer!r}")
    if not 0 <= seq < 2**63:  # a feed's cursor past any real number would hide the rest
        raise OutboxError("answer number out of range")
    if answer != "decline":
        return None
    if reason is not None and reason not in DECLINE_REASONS:
        return "その他"
    return reason


def store_answer(
    db: sqlite3.Connection,
    case_id: str,
    hospital_id: str,
    answer: str,
    at: float,
    reason: str | None,
) -> None:
    """Keep one checked answer (``check_answer``) in the caller's transaction;
    ``received`` (the hospital has the case) never replaces an accept/decline."""
    db.execute(
        "INSERT INTO answers (case_id, hospital_id, answer, at, reason)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_id, hospital_id) DO UPDATE SET"
        " answer = excluded.answer, at = excluded.at, reason = excluded.reason"
        " WHERE excluded.answer != 'received' OR answers.answer = 'received'",
        (case_id, hospital_id, answer, at, reason),
    )


class AnswerLedger:
    """The answers and the answer stream's cursor in the outbox's file (``AnswerBook``)."""

    def __init__(self, tx: Connect, read: Connect) -> None:
        self._tx = tx
        self._read = read

    @property
    def answers_after(self) -> int:
        """The last device event number applied (the answer stream's durable cursor)."""
        with self._read() as db:
            row = db.execute("SELECT v FROM meta WHERE k = 'answers_after'").fetchone()
        return 0 if row is None else int(row[0])

    def apply_answer_event(
        self,
        seq: int,
        case_id: str,
        hospital_id: str,
        answer: str,
        at: float,
        reason: str | None = None,
    ) -> bool:
        """Record one answer event and advance the cursor atomically; False if already seen.

        ``received`` (the hospital has the case) never replaces an accept/decline. A
        decline keeps its reason only when it is one of ``sync.reasons.DECLINE_REASONS``
        (any other text becomes その他: free text is not kept on the device).
        """
        reason = check_answer(seq, answer, reason)
        with self._tx() as db:
            row = db.execute("SELECT v FROM meta WHERE k = 'answers_after'").fetchone()
            if row is not None and int(row[0]) >= seq:
                return False
            store_answer(db, case_id, hospital_id, answer, at, reason)
            db.execute(
                "INSERT INTO meta (k, v) VALUES ('answers_after', ?)"
                " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (str(seq),),
            )
        return True

    def skip_device_event(self, seq: int) -> None:
        """Advance the answer cursor past an event that is not an answer."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (k, v) VALUES ('answers_after', ?) ON CONFLICT (k)"
                " DO UPDATE SET v = excluded.v"
                " WHERE CAST(meta.v AS INTEGER) < CAST(excluded.v AS INTEGER)",
                (str(seq),),
            )
