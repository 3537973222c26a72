"""The device's durable outbox: sealed cases, and the crew's later intents, wait here.

SQLite in WAL mode with ``synchronous=FULL`` (a committed case survives ``kill -9``
and power loss) and ``secure_delete`` (deleted envelopes are overwritten). Only
sealed envelopes are written: the device cannot read back what waits. Once the
platform answers 201 the envelope is deleted in the same transaction that
records the non-personal delivery status (case id, recipients, times, answers).

Intents: besides the sealed case (kind ``case``) a row may hold a later intent
about the same case: ``destination`` (non-personal JSON: hospital id and how the
acceptance was established, ``answer`` or ``phone``) or ``closure`` (the 中止 /
不搬送 document, sealed to the case's recipients like the case). Rows of one case
leave in the order they were queued: ``due`` hands out a row only when no earlier
row of the same case waits, so a destination or closure never reaches the platform
before the case's 201. ``close_case`` discards a case that never left (nothing is
sent then) and otherwise queues its closure after it. An intent the platform
refuses for good (4xx) is dropped and recorded as ``refused`` (``intent_state``); a
case only when its envelope version was refused and it cannot be sealed again
(``sync.reseal``; ``replace_case`` swaps in the one sealed again).

Storage limit: ``max_bytes`` counts queued envelope bytes plus a fixed cost per
status row. When a new case does not fit, the operator's ``FullPolicy`` decides:
``REFUSE_NEW`` raises ``OutboxFull``; ``DROP_OLDEST_STATUS`` first forgets the
oldest *delivered* status rows and raises ``OutboxFull`` only if that is not
enough. A queued case is never dropped. A full disk raises ``StorageFull`` and
leaves every committed case in place.

Beside the queue, the same file keeps what the device learns about its cases, each
behind an attribute built over the outbox's one connection and its transactions
(``_tx``; never a second connection to the file):

- ``answers``: ``sync.answer_ledger.AnswerLedger``, the hospitals' answers and the
  answer stream's cursor (the ``AnswerBook`` ``sync.sender.follow_answers`` writes);
- ``direct``: ``sync.direct_ledger.DirectLedger``, which hospital has which row by the
  direct route and each hospital's answer feed cursor (docs/disaster.md);
- ``revocation_floor``: ``sync.revocation_floor.StoredRevocationFloor``, the last
  revocation snapshot version accepted (``sync.client.RevocationFloor``).

The outbox reads the answers and the direct record into ``status`` and forgets them with
the delivered status rows it drops. The tables and ``meta`` keys are those earlier
releases wrote: an existing outbox opens unchanged.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from sync._backoff import Backoff
from sync._errors import OutboxCorrupt, OutboxError, OutboxFull, StorageFull
from sync.answer_ledger import AnswerLedger
from sync.direct_ledger import DirectLedger
from sync.envelope import SealedCase
from sync.revocation_floor import StoredRevocationFloor

__all__ = [
    "KINDS",
    "STATUS_ROW_BYTES",
    "DeliveryStatus",
    "FullPolicy",
    "Outbox",
    "PendingCase",
]

STATUS_ROW_BYTES = 256
_SQLITE_FULL = 13

# The queue: the sealed case and the intents after it (one row per case and kind).
_PENDING = """
CREATE TABLE IF NOT EXISTS {name} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'case',
    idempotency_key TEXT NOT NULL,
    recipients TEXT NOT NULL,
    envelope BLOB NOT NULL,
    size INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    UNIQUE (case_id, kind)
);
"""

_SCHEMA = (
    _PENDING.format(name="pending")
    + """
CREATE TABLE IF NOT EXISTS status (
    case_id TEXT PRIMARY KEY,
    recipients TEXT NOT NULL,
    queued_at REAL NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS ix_status_delivered ON status (delivered_at);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    case_id TEXT NOT NULL,
    hospital_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT,
    PRIMARY KEY (case_id, hospital_id)
);
"""
)

# An outbox written before intents existed: ``pending`` had ``case_id UNIQUE`` and no
# kind; ``answers`` no reason. Rebuilt / extended once, in one transaction.
_MIGRATE_PENDING = (
    _PENDING.format(name="pending_v2")  # noqa: S608 (a constant name, no input)
    + """
INSERT INTO pending_v2 (seq, case_id, idempotency_key, recipients, envelope, size, attempts,
    next_attempt_at, last_error)
    SELECT seq, case_id, idempotency_key, recipients, envelope, size, attempts,
    next_attempt_at, last_error FROM pending;
DROP TABLE pending;
ALTER TABLE pending_v2 RENAME TO pending;
"""
)

#: The kinds of rows: the sealed case and the intents that follow it.
KINDS = ("case", "destination", "closure")


class FullPolicy(enum.Enum):
    """What the operator wants when the storage limit is reached."""

    REFUSE_NEW = "refuse_new"
    DROP_OLDEST_STATUS = "drop_oldest_status"


@dataclass(frozen=True)
class PendingCase:
    case_id: str
    idempotency_key: str
    recipients: tuple[str, ...]
    envelope: bytes
    attempts: int
    next_attempt_at: float
    kind: str = "case"  # case | destination | closure


@dataclass(frozen=True)
class DeliveryStatus:
    """Non-personal record of one case's delivery."""

    case_id: str
    recipients: tuple[str, ...]
    queued_at: float
    delivered_at: float | None
    attempts: int
    last_error: str | None
    answers: dict[str, str]  # hospital id -> received | accept | decline
    reasons: dict[str, str] = field(default_factory=dict)  # hospital id -> decline reason
    # platform (プラットフォーム経由) | direct (直接送信: the platform was out, docs/disaster.md)
    route: str = "platform"
    # The hospitals that got it by the direct route (each row of the screen says its own).
    direct_to: frozenset[str] = frozenset()


def _is_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == _SQLITE_FULL or "database or disk is full" in str(exc)


class Outbox:
    """A durable store-and-forward queue of sealed cases (thread-safe)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        policy: FullPolicy = FullPolicy.REFUSE_NEW,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.policy = policy
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._lock = threading.RLock()
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxCorrupt(f"journal mode {mode}")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            # Small WAL: checkpoint often and truncate, so a small disk is not eaten by the log.
            self._db.execute("PRAGMA wal_autocheckpoint=64")
            self._db.execute("PRAGMA journal_size_limit=262144")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._migrate()
        # Rows handed out by ``due`` and not yet marked: a post of them is under way
        # (memory only: after a restart nothing is).
        self._inflight: set[tuple[str, str]] = set()
        #: The hospitals' answers and the device answer stream's cursor (``AnswerBook``).
        self.answers = AnswerLedger(self._tx, self._read)
        #: What the direct route delivered, and its answer feeds' cursors.
        self.direct = DirectLedger(self._tx, self._read)
        #: The last revocation snapshot version accepted (``sync.client.RevocationFloor``).
        self.revocation_floor = StoredRevocationFloor(self._tx, self._read)

    def _migrate(self) -> None:
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(pending)")}
        if "kind" not in cols:
            self._db.executescript("BEGIN IMMEDIATE;" + _MIGRATE_PENDING + "COMMIT;")
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(answers)")}
        if "reason" not in cols:
            self._db.execute("ALTER TABLE answers ADD COLUMN reason TEXT")

    def _now(self) -> float:
        return float(self._clock())

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OutboxError:
            raise
        except sqlite3.Error as exc:
            if _is_full(exc):
                raise StorageFull(str(exc)) from exc
            raise OutboxCorrupt(str(exc)) from exc
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC
                raise StorageFull(str(exc)) from exc
            raise OutboxCorrupt(str(exc)) from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    # SQLite may already have rolled back itself (SQLITE_FULL).
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads outside a transaction (under the lock)."""
        with self._lock, self._errors():
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queueing ---------------------------------------------------------------------

    def used_bytes(self) -> int:
        with self._lock, self._errors():
            return self._used(self._db)

    @staticmethod
    def _used(db: sqlite3.Connection) -> int:
        pending = db.execute("SELECT COALESCE(SUM(size), 0) FROM pending").fetchone()[0]
        rows = db.execute("SELECT COUNT(*) FROM status").fetchone()[0]
        return int(pending) + int(rows) * STATUS_ROW_BYTES

    def enqueue(self, sealed: bytes | SealedCase) -> PendingCase:
        """Queue one sealed envelope (``sync.seal.seal_case`` output; parsed here unless it
        is a ``SealedCase`` already).

        Idempotent per case id: queuing the same case again returns the waiting entry.
        Raises ``OutboxFull`` (limit), ``StorageFull`` (disk), ``MalformedEnvelope``.
        """
        meta = sealed if isinstance(sealed, SealedCase) else SealedCase.from_bytes(sealed)
        sealed = meta.raw
        recipients = json.dumps(list(meta.recipient_ids))
        now = self._now()
        with self._tx() as db:
            row = db.execute(
                "SELECT case_id FROM pending WHERE case_id = ? AND kind = 'case'", (meta.case_id,)
            ).fetchone()
            known = db.execute("SELECT 1 FROM status WHERE case_id = ?", (meta.case_id,)).fetchone()
            if row is None and known is not None:
                raise OutboxError(f"case {meta.case_id} was already delivered")
            if row is None:
                self._make_room(db, len(sealed) + STATUS_ROW_BYTES)
                db.execute(
                    "INSERT INTO pending (case_id, idempotency_key, recipients, envelope, size,"
                    " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (meta.case_id, str(uuid.uuid4()), recipients, sealed, len(sealed), now),
                )
                db.execute(
                    "INSERT INTO status (case_id, recipients, queued_at) VALUES (?, ?, ?)",
                    (meta.case_id, recipients, now),
                )
        pending = self.get(meta.case_id)
        assert pending is not None
        return pending

    def enqueue_intent(
        self, case_id: str, kind: str, body: bytes | SealedCase, recipients: Sequence[str]
    ) -> PendingCase:
        """Queue an intent about a queued or delivered case, after everything of it queued
        before. ``destination``: non-personal JSON; ``closure``: a sealed envelope of the
        same case id. Idempotent per (case, kind)."""
        if kind not in KINDS or kind == "case":
            raise OutboxError(f"unknown intent kind {kind!r}")
        if kind == "closure":
            meta = body if isinstance(body, SealedCase) else SealedCase.from_bytes(body)
            if meta.case_id != case_id:
                raise OutboxError("the closure is sealed for another case")
            body, recipients = meta.raw, meta.recipient_ids
        assert isinstance(body, bytes)
        now = self._now()
        with self._tx() as db:
            self._insert_intent(db, case_id, kind, body, recipients, now)
        return self._get(case_id, kind)  # type: ignore[return-value]

    def _insert_intent(
        self,
        db: sqlite3.Connection,
        case_id: str,
        kind: str,
        body: bytes,
        recipients: Sequence[str],
        now: float,
    ) -> None:
        if db.execute("SELECT 1 FROM status WHERE case_id = ?", (case_id,)).fetchone() is None:
            raise OutboxError(f"case {case_id} was never queued here")
        if db.execute(
            "SELECT 1 FROM pending WHERE case_id = ? AND kind = ?", (case_id, kind)
        ).fetchone():
            return
        self._make_room(db, len(body))
        db.execute(
            "INSERT INTO pending (case_id, kind, idempotency_key, recipients, envelope, size,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (case_id, kind, str(uuid.uuid4()), json.dumps(list(recipients)), body, len(body), now),
        )
        _set_intent(db, case_id, kind, "pending")

    def close_case(
        self, case_id: str, closure: bytes | SealedCase, *, force: bool = False
    ) -> bool | None:
        """中止 / 不搬送 of a queued case, in one transaction.

        If the case never left (still waiting, no post under way, no hospital has it by the
        direct route) it is discarded with
        every intent queued after it, and nothing is sent: False. If it reached the
        platform, the sealed ``closure`` is queued after it: True. While a post of the
        case is under way the answer is not known yet: None and nothing changes (ask
        again), unless ``force`` (then the closure is queued: if that post failed, the
        case leaves later and is closed right after).
        """
        meta = closure if isinstance(closure, SealedCase) else SealedCase.from_bytes(closure)
        if meta.case_id != case_id:
            raise OutboxError("the closure is sealed for another case")
        now = self._now()
        with self._tx() as db:
            row = db.execute(
                "SELECT 1 FROM pending WHERE case_id = ? AND kind = 'case'", (case_id,)
            ).fetchone()
            under_way = (case_id, "case") in self._inflight
            # A case some hospital has by the direct route has left: it is closed, not
            # discarded (those hospitals must be told; docs/disaster.md).
            took = self.direct.took_in(db, case_id)
            if row is not None and not under_way and not took:
                db.execute("DELETE FROM pending WHERE case_id = ?", (case_id,))
                for kind in KINDS:
                    db.execute("DELETE FROM meta WHERE k = ?", (_intent_key(case_id, kind),))
                db.execute("DELETE FROM answers WHERE case_id = ?", (case_id,))
                db.execute("DELETE FROM status WHERE case_id = ?", (case_id,))
                return False
            if row is not None and not force and not took:
                return None
            self._insert_intent(db, case_id, "closure", meta.raw, meta.recipient_ids, now)
        return True

    def intent_state(self, case_id: str, kind: str) -> str | None:
        """``pending`` | ``delivered`` | ``refused:<code>`` of an intent; None: none queued."""
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT v FROM meta WHERE k = ?", (_intent_key(case_id, kind),)
            ).fetchone()
        return None if row is None else str(row[0])

    def _make_room(self, db: sqlite3.Connection, needed: int) -> None:
        if self.max_bytes is None:
            return
        used = self._used(db)
        if used + needed <= self.max_bytes:
            return
        if self.policy is FullPolicy.DROP_OLDEST_STATUS:
            over = used + needed - self.max_bytes
            rows = -(-over // STATUS_ROW_BYTES)
            delivered = db.execute(
                "SELECT case_id FROM status WHERE delivered_at IS NOT NULL"
                " ORDER BY delivered_at LIMIT ?",
                (rows,),
            ).fetchall()
            if len(delivered) == rows:
                ids = [(r[0],) for r in delivered]
                db.executemany("DELETE FROM answers WHERE case_id = ?", ids)
                for kind in KINDS:
                    db.executemany(
                        "DELETE FROM meta WHERE k = ?", [(_intent_key(i, kind),) for (i,) in ids]
                    )
                # What the direct route delivered of those cases goes with them.
                self.direct.forget(db, (i for (i,) in ids), KINDS)
                db.executemany("DELETE FROM status WHERE case_id = ?", ids)
                return
        raise OutboxFull(f"{used} of {self.max_bytes} bytes used, {needed} more needed")

    # -- delivery ---------------------------------------------------------------------

    def get(self, case_id: str) -> PendingCase | None:
        """The waiting sealed case ``case_id`` (None once delivered)."""
        return self._get(case_id, "case")

    def _get(self, case_id: str, kind: str) -> PendingCase | None:
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT case_id, idempotency_key, recipients, envelope, attempts, next_attempt_at,"
                " kind FROM pending WHERE case_id = ? AND kind = ?",
                (case_id, kind),
            ).fetchone()
        return None if row is None else _pending(row)

    def due(self, limit: int = 64, now: float | None = None) -> list[PendingCase]:
        """The oldest rows whose next attempt time has come and that wait for no earlier row
        of their case (a case's intents follow its 201). They count as under way until
        ``mark_delivered`` / ``mark_failed`` / ``mark_refused``."""
        at = self._now() if now is None else now
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT case_id, idempotency_key, recipients, envelope, attempts, next_attempt_at,"
                " kind FROM pending AS p WHERE next_attempt_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM pending AS e"
                " WHERE e.case_id = p.case_id AND e.seq < p.seq) ORDER BY seq LIMIT ?",
                (at, limit),
            ).fetchall()
            self._inflight.update((str(r[0]), str(r[6])) for r in rows)
        return [_pending(r) for r in rows]

    def waiting(self, *, envelopes: bool = True) -> list[PendingCase]:
        """Every waiting row (cases and intents), oldest first, whatever its next attempt
        (the direct route's round, ``sync.direct``). ``envelopes=False``: the rows without
        their envelope bytes (``envelope`` is empty; ``row`` reads one in full), for a
        round that runs every second and posts few of them, if any."""
        column = "envelope" if envelopes else "X''"
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT case_id, idempotency_key, recipients, "  # noqa: S608 (a constant)
                + column
                + ", attempts, next_attempt_at, kind FROM pending ORDER BY seq"
            ).fetchall()
        return [_pending(r) for r in rows]

    def row(self, case_id: str, kind: str) -> PendingCase | None:
        """The waiting row ``(case_id, kind)`` with its envelope (None once gone)."""
        return self._get(case_id, kind)

    def pending_count(self) -> int:
        with self._lock, self._errors():
            return int(self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def pending_by_kind(self) -> dict[str, int]:
        """How many rows wait, per kind (``case``, ``destination``, ``closure``); kinds
        with none are left out."""
        with self._lock, self._errors():
            rows = self._db.execute("SELECT kind, COUNT(*) FROM pending GROUP BY kind").fetchall()
        return {str(kind): int(n) for kind, n in rows}

    def pending_ids(self) -> list[str]:
        """The sealed cases waiting, oldest first (intents not included)."""
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT case_id FROM pending WHERE kind = 'case' ORDER BY seq"
            ).fetchall()
        return [r[0] for r in rows]

    def next_due_at(self) -> float | None:
        with self._lock, self._errors():
            row = self._db.execute("SELECT MIN(next_attempt_at) FROM pending").fetchone()
        return None if row[0] is None else float(row[0])

    def wake(self) -> None:
        """Make every waiting case due now (the network came back)."""
        with self._tx() as db:
            db.execute("UPDATE pending SET next_attempt_at = ?", (self._now(),))

    def mark_delivered(self, case_id: str, at: float | None = None, kind: str = "case") -> None:
        """The platform has the case (or intent): delete the row, keep the status."""
        when = self._now() if at is None else at
        with self._tx() as db:
            self._inflight.discard((case_id, kind))
            db.execute("DELETE FROM pending WHERE case_id = ? AND kind = ?", (case_id, kind))
            if kind == "case":
                db.execute(
                    "UPDATE status SET delivered_at = COALESCE(delivered_at, ?),"
                    " attempts = attempts + 1, last_error = NULL WHERE case_id = ?",
                    (when, case_id),
                )
            else:
                _set_intent(db, case_id, kind, "delivered")

    def mark_refused(self, case_id: str, kind: str, error_code: str) -> None:
        """The platform refused an intent for good (a 4xx): drop it, remember why
        (``intent_state``). A sealed case only for its envelope version, when it cannot be
        sealed again (``sync.reseal``): with the intents queued after it."""
        if kind == "case" and error_code != "envelope_version_refused":
            raise OutboxError("a sealed case is never dropped")
        outcome = f"refused:{error_code}"[:80]
        with self._tx() as db:
            self._inflight.discard((case_id, kind))
            for k in KINDS if kind == "case" else (kind,):
                cur = db.execute("DELETE FROM pending WHERE case_id = ? AND kind = ?", (case_id, k))
                if cur.rowcount or k == kind:
                    _set_intent(db, case_id, k, outcome)
            if kind == "case":
                db.execute(
                    "UPDATE status SET last_error = ? WHERE case_id = ?", (error_code, case_id)
                )

    def replace_case(
        self, case_id: str, sealed: bytes | SealedCase, kind: str = "case"
    ) -> PendingCase | None:
        """The waiting case (or its ``closure``) sealed again (its envelope version was
        refused): the row keeps its place (a case before its intents) and gets the new
        envelope, recipients and a new ``Idempotency-Key``, due now. None if it no longer
        waits."""
        if kind not in ("case", "closure"):
            raise OutboxError(f"only a sealed row is sealed again, not {kind!r}")
        meta = sealed if isinstance(sealed, SealedCase) else SealedCase.from_bytes(sealed)
        if meta.case_id != case_id:
            raise OutboxError("the new envelope is sealed for another case")
        recipients = json.dumps(list(meta.recipient_ids))
        with self._tx() as db:
            self._inflight.discard((case_id, kind))
            row = db.execute(
                "SELECT size FROM pending WHERE case_id = ? AND kind = ?", (case_id, kind)
            ).fetchone()
            if row is None:
                return None
            self._make_room(db, max(0, len(meta.raw) - int(row[0])))
            where = (case_id, kind)
            db.execute(
                "UPDATE pending SET idempotency_key = ?, recipients = ?, envelope = ?, size = ?,"
                " attempts = 0, next_attempt_at = ?, last_error = NULL"
                " WHERE case_id = ? AND kind = ?",
                (str(uuid.uuid4()), recipients, meta.raw, len(meta.raw), self._now(), *where),
            )
            if kind == "case":
                db.execute(
                    "UPDATE status SET recipients = ?, last_error = ? WHERE case_id = ?",
                    (recipients, "envelope_version_refused", case_id),
                )
        return self.get(case_id) if kind == "case" else self._get(case_id, kind)

    def mark_failed(
        self,
        case_id: str,
        error_code: str,
        retry_after: float | None = None,
        kind: str = "case",
    ) -> float:
        """Record a failed attempt; return the time of the next one."""
        now = self._now()
        with self._tx() as db:
            self._inflight.discard((case_id, kind))
            row = db.execute(
                "SELECT attempts FROM pending WHERE case_id = ? AND kind = ?", (case_id, kind)
            ).fetchone()
            if row is None:
                return now
            attempts = int(row[0]) + 1
            next_at = now + self.backoff.delay(attempts, retry_after)
            db.execute(
                "UPDATE pending SET attempts = ?, next_attempt_at = ?, last_error = ?"
                " WHERE case_id = ? AND kind = ?",
                (attempts, next_at, error_code, case_id, kind),
            )
            if kind == "case":
                db.execute(
                    "UPDATE status SET attempts = ?, last_error = ? WHERE case_id = ?",
                    (attempts, error_code, case_id),
                )
        return next_at

    # -- status -----------------------------------------------------------------------

    def status(self, case_id: str) -> DeliveryStatus | None:
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT case_id, recipients, queued_at, delivered_at, attempts, last_error"
                " FROM status WHERE case_id = ?",
                (case_id,),
            ).fetchone()
            if row is None:
                return None
            answers = self._db.execute(
                "SELECT hospital_id, answer, reason FROM answers WHERE case_id = ?", (case_id,)
            ).fetchall()
            direct = self.direct.delivered_in(self._db, case_id)
        return DeliveryStatus(
            case_id=row[0],
            recipients=tuple(json.loads(row[1])),
            queued_at=row[2],
            delivered_at=row[3],
            attempts=row[4],
            last_error=row[5],
            answers={h: a for h, a, _ in answers},
            reasons={h: r for h, _, r in answers if r},
            route="direct" if direct else "platform",
            direct_to=frozenset(direct),
        )

    def statuses(self) -> Sequence[DeliveryStatus]:
        with self._lock, self._errors():
            ids = [r[0] for r in self._db.execute("SELECT case_id FROM status ORDER BY queued_at")]
        return [s for s in (self.status(i) for i in ids) if s is not None]


def _intent_key(case_id: str, kind: str) -> str:
    return f"intent:{kind}:{case_id}"


def _set_intent(db: sqlite3.Connection, case_id: str, kind: str, outcome: str) -> None:
    """An intent's outcome (pending | delivered | refused:<code>), kept in ``meta``."""
    db.execute(
        "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        (_intent_key(case_id, kind), outcome),
    )


def _pending(row: tuple[object, ...]) -> PendingCase:
    case_id, key, recipients, envelope, attempts, next_at, kind = row
    assert isinstance(recipients, str)
    assert isinstance(envelope, bytes)
    return PendingCase(
        case_id=str(case_id),
        idempotency_key=str(key),
        recipients=tuple(json.loads(recipients)),
        envelope=envelope,
        attempts=int(attempts),  # type: ignore[call-overload]
        next_attempt_at=float(next_at),  # type: ignore[arg-type]
        kind=str(kind),
    )
