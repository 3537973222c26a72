"""The outbox: durability settings, delivery bookkeeping, limits, backoff, resume."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync import (
    MalformedEnvelope,
    OutboxError,
    OutboxFull,
    ServerError,
    TransportError,
    seal_case,
)
from sync._backoff import Backoff
from sync.outbox import STATUS_ROW_BYTES, FullPolicy, Outbox
from sync.sender import Sender

DEVICE = Ed25519PrivateKey.generate()
HOSP = {f"h{i}": X25519PrivateKey.generate().public_key() for i in range(2)}


def sealed(case_id: str, size: int = 100) -> bytes:
    return seal_case(
        b"x" * size, case_id=case_id, device_id="dev-1", device_key=DEVICE, recipients=HOSP
    )


def test_pragmas_and_permissions(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    assert ob._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert ob._db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert (tmp_path / "o.db").stat().st_mode & 0o077 == 0


def test_enqueue_deliver_keeps_only_status(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    env = sealed("c1")
    p = ob.enqueue(env)
    assert p.recipients == ("h0", "h1")
    assert ob.enqueue(env).idempotency_key == p.idempotency_key  # same case: same key
    assert [c.case_id for c in ob.due()] == ["c1"]
    ob.mark_delivered("c1", at=123.0)
    assert ob.pending_count() == 0
    st = ob.status("c1")
    assert st is not None
    assert st.delivered_at == 123.0
    assert st.recipients == ("h0", "h1")
    ob.answers.apply_answer_event(1, "c1", "h0", "accept", 130.0)
    ob.answers.apply_answer_event(2, "c1", "h1", "decline", 131.0)
    ob.answers.apply_answer_event(3, "c1", "h1", "accept", 132.0)  # a later answer replaces
    assert ob.status("c1").answers == {"h0": "accept", "h1": "accept"}  # type: ignore[union-attr]
    rows = ob._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
    assert rows == 0
    ob.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert env[-64:] not in raw  # the envelope's bytes are gone (secure_delete)


def test_resume_after_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    keys = {ob.enqueue(sealed(f"c{i}")).idempotency_key for i in range(3)}
    ob.close()
    again = Outbox(tmp_path / "o.db")
    assert again.pending_ids() == ["c0", "c1", "c2"]
    assert {c.idempotency_key for c in again.due()} == keys


def test_refuse_new_when_full_never_drops(tmp_path: Path) -> None:
    size = len(sealed("c0"))
    ob = Outbox(tmp_path / "o.db", max_bytes=3 * (size + STATUS_ROW_BYTES))
    for i in range(3):
        ob.enqueue(sealed(f"c{i}"))
    with pytest.raises(OutboxFull) as info:
        ob.enqueue(sealed("c3"))
    assert info.value.code == "outbox_full"
    assert info.value.message_ja
    assert ob.pending_ids() == ["c0", "c1", "c2"]
    ob.mark_delivered("c0")
    with pytest.raises(OutboxFull):  # refuse_new keeps history too
        ob.enqueue(sealed("c3"))


def test_drop_oldest_status_policy(tmp_path: Path) -> None:
    size = len(sealed("c0"))
    ob = Outbox(
        tmp_path / "o.db",
        max_bytes=3 * (size + STATUS_ROW_BYTES),
        policy=FullPolicy.DROP_OLDEST_STATUS,
    )
    for i in range(3):
        ob.enqueue(sealed(f"c{i}"))
    with pytest.raises(OutboxFull):  # nothing delivered: no status to forget, no case dropped
        ob.enqueue(sealed("c3"))
    ob.direct.mark("c0", "case", "h1")  # c0 also went by the direct route
    ob.mark_delivered("c0", at=1.0)
    ob.mark_delivered("c1", at=2.0)
    ob.enqueue(sealed("c3"))  # fits: two envelopes fewer
    assert ob.status("c0") is not None
    ob.enqueue(sealed("c4"))  # needs two status rows' room: the two oldest delivered go
    assert ob.status("c0") is None
    assert ob.status("c1") is None
    assert ob.direct.done("c0", "case") == set()  # its direct record went with its status
    assert ob.pending_ids() == ["c2", "c3", "c4"]
    with pytest.raises(OutboxFull):  # only queued cases left: refuse, never drop one
        ob.enqueue(sealed("c5"))
    assert ob.pending_ids() == ["c2", "c3", "c4"]
    assert ob.used_bytes() <= 3 * (size + STATUS_ROW_BYTES)


def test_backoff_full_jitter_and_retry_after() -> None:
    b = Backoff(base=1.0, cap=8.0, max_retry_after=30.0, rng=random.Random(1))
    for attempt in range(1, 12):
        for _ in range(50):
            d = b.delay(attempt)
            assert 0.0 <= d <= min(8.0, 2 ** (attempt - 1))
    assert max(b.delay(10) for _ in range(200)) > 4.0  # reaches towards the cap
    assert all(b.delay(1, retry_after=5) >= 5 for _ in range(50))  # Retry-After is a floor
    assert all(b.delay(1, retry_after=999) <= 30 for _ in range(50))  # ... capped


class FlakyPoster:
    def __init__(self, errors: list[Exception | None]) -> None:
        self.errors = errors
        self.calls: list[tuple[str, str]] = []

    def post_case(
        self,
        case_id: str,
        recipients: list[str],
        envelope: bytes,
        *,
        idempotency_key: str,
        outbox_depth: int | None = None,
    ) -> dict[str, Any]:
        self.calls.append((case_id, idempotency_key))
        err = self.errors.pop(0) if self.errors else None
        if err is not None:
            raise err
        return {}


def test_sender_retries_with_same_key_and_honours_retry_after(tmp_path: Path) -> None:
    now = [1000.0]
    ob = Outbox(tmp_path / "o.db", backoff=Backoff(base=0.01, cap=0.02), clock=lambda: now[0])
    ob.enqueue(sealed("c1"))
    poster = FlakyPoster([ServerError(503, retry_after=60.0), TransportError("down"), None])
    sender = Sender(ob, poster, clock=lambda: now[0])
    assert sender.send_due() == (0, 1)
    nxt = ob.next_due_at()
    assert nxt is not None
    assert nxt >= 1060.0  # Retry-After honoured
    assert sender.send_due() == (0, 0)  # not due yet
    now[0] = 1061.0
    assert sender.send_due() == (0, 1)
    assert ob.status("c1").last_error == "platform_unreachable"  # type: ignore[union-attr]
    now[0] = 1062.0
    assert sender.send_due() == (1, 0)
    assert ob.pending_count() == 0
    assert len({k for _, k in poster.calls}) == 1  # one Idempotency-Key for every attempt
    sender.close()


def test_corrupt_database_is_typed(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"not a database" * 100)
    from sync import OutboxCorrupt

    with pytest.raises(OutboxCorrupt):
        Outbox(path)
    assert isinstance(sqlite3.DatabaseError("x"), Exception)


def test_answer_events_are_applied_once_with_a_durable_cursor(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.enqueue(sealed("c1"))
    assert ob.answers.answers_after == 0
    assert ob.answers.apply_answer_event(1, "c1", "h0", "decline", 10.0)
    assert not ob.answers.apply_answer_event(1, "c1", "h0", "accept", 11.0)  # replayed event
    ob.answers.skip_device_event(2)
    assert ob.answers.apply_answer_event(3, "c1", "h1", "accept", 12.0)
    ob.close()
    again = Outbox(tmp_path / "o.db")
    assert again.answers.answers_after == 3
    assert again.status("c1").answers == {"h0": "decline", "h1": "accept"}  # type: ignore[union-attr]
    with pytest.raises(OutboxError):
        again.answers.apply_answer_event(4, "c1", "h0", "maybe", 13.0)


def test_only_sealed_envelopes_can_be_queued(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    with pytest.raises(MalformedEnvelope):
        ob.enqueue(b'{"resourceType": "Bundle"}')
    assert ob.pending_count() == 0


# -- intents after a case: in order, kinds, closure, receipts ------------------------------


def test_intents_wait_for_their_case_and_leave_in_order(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.enqueue(sealed("c1"))
    ob.enqueue(sealed("c2"))
    with pytest.raises(OutboxError):  # an intent about a case never queued here
        ob.enqueue_intent("c9", "destination", b"{}", ["h0"])
    dest = b'{"hospital_id": "h0", "via": "phone"}'
    ob.enqueue_intent("c1", "destination", dest, ["h0"])
    assert ob.intent_state("c1", "destination") == "pending"
    assert [c.case_id for c in ob.due()] == ["c1", "c2"]  # now being posted
    assert ob.close_case("c1", sealed("c1")) is None  # the post decides
    assert ob.close_case("c1", sealed("c1"), force=True) is True  # queued after the case
    # Only the first row of each case is due: c1's case and c2's case.
    assert [(c.case_id, c.kind) for c in ob.due()] == [("c1", "case"), ("c2", "case")]
    ob.mark_delivered("c1")
    assert [(c.case_id, c.kind) for c in ob.due()] == [("c2", "case"), ("c1", "destination")]
    ob.mark_delivered("c1", kind="destination")
    assert ob.intent_state("c1", "destination") == "delivered"
    assert [(c.case_id, c.kind) for c in ob.due()] == [("c2", "case"), ("c1", "closure")]
    ob.mark_refused("c1", "closure", "case_closed")
    assert ob.intent_state("c1", "closure") == "refused:case_closed"
    assert ob.pending_ids() == ["c2"]
    with pytest.raises(OutboxError):
        ob.mark_refused("c2", "case", "x")  # a sealed case is never dropped


def test_close_case_discards_what_never_left(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.enqueue(sealed("c1"))
    ob.enqueue_intent("c1", "destination", b'{"hospital_id": "h0", "via": "phone"}', ["h0"])
    with pytest.raises(OutboxError):
        ob.close_case("c1", sealed("c2"))  # sealed for another case
    assert ob.close_case("c1", sealed("c1")) is False  # nothing was sent: all gone
    assert ob.pending_count() == 0
    assert ob.status("c1") is None
    assert ob.intent_state("c1", "destination") is None
    # Under way: the post decides; asked again after it failed, the case is discarded.
    ob.enqueue(sealed("c3"))
    assert [c.case_id for c in ob.due()] == ["c3"]
    assert ob.close_case("c3", sealed("c3")) is None
    assert ob.pending_ids() == ["c3"]
    ob.mark_failed("c3", "platform_unreachable")
    assert ob.close_case("c3", sealed("c3")) is False
    # Delivered: the closure follows it.
    ob.enqueue(sealed("c4"))
    ob.mark_delivered("c4")
    assert ob.close_case("c4", sealed("c4")) is True
    assert [(c.case_id, c.kind) for c in ob.due()] == [("c4", "closure")]


def test_receipts_answers_and_reasons(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.enqueue(sealed("c1"))
    ob.mark_delivered("c1")
    answers = ob.answers
    assert answers.apply_answer_event(1, "c1", "h0", "received", 1.0)
    assert answers.apply_answer_event(2, "c1", "h0", "decline", 2.0, "満床")
    assert answers.apply_answer_event(3, "c1", "h0", "received", 3.0)  # late: never replaces it
    assert answers.apply_answer_event(4, "c1", "h1", "decline", 4.0, "患者の氏名は…")  # free text
    st = ob.status("c1")
    assert st is not None
    assert st.answers == {"h0": "decline", "h1": "decline"}
    assert st.reasons == {"h0": "満床", "h1": "その他"}  # free text is not kept
    with pytest.raises(OutboxError):
        answers.apply_answer_event(5, "c1", "h0", "maybe", 5.0)


def test_an_outbox_from_before_intents_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL"
        " UNIQUE, idempotency_key TEXT NOT NULL, recipients TEXT NOT NULL, envelope BLOB NOT"
        " NULL, size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at"
        " REAL NOT NULL, last_error TEXT);"
        "CREATE TABLE status (case_id TEXT PRIMARY KEY, recipients TEXT NOT NULL, queued_at"
        " REAL NOT NULL, delivered_at REAL, attempts INTEGER NOT NULL DEFAULT 0, last_error"
        " TEXT);"
        "CREATE TABLE answers (case_id TEXT NOT NULL, hospital_id TEXT NOT NULL, answer TEXT"
        " NOT NULL, at REAL NOT NULL, PRIMARY KEY (case_id, hospital_id));"
    )
    env = sealed("old")
    db.execute(
        "INSERT INTO pending (case_id, idempotency_key, recipients, envelope, size,"
        " next_attempt_at) VALUES ('old', 'k-old', '[\"h0\",\"h1\"]', ?, ?, 0)",
        (env, len(env)),
    )
    db.execute("INSERT INTO status (case_id, recipients, queued_at) VALUES ('old', '[]', 0)")
    db.execute("INSERT INTO answers VALUES ('x', 'h0', 'accept', 1)")
    db.commit()
    db.close()
    ob = Outbox(path)
    (row,) = ob.due()
    assert (row.case_id, row.kind, row.idempotency_key) == ("old", "case", "k-old")
    ob.enqueue_intent("old", "destination", b'{"hospital_id": "h0"}', ["h0"])
    assert ob.pending_count() == 2
    assert ob.status("x") is None  # answers kept, no status: nothing else changed
    ob.close()
    Outbox(path).close()  # opened again: nothing to migrate


def test_the_ledgers_keep_the_meta_keys_earlier_releases_wrote(tmp_path: Path) -> None:
    """``answers``, ``direct`` and ``revocation_floor`` read and write the outbox file's
    ``meta`` rows under the keys an outbox of an earlier release holds (no migration)."""
    path = tmp_path / "o.db"
    Outbox(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO status (case_id, recipients, queued_at) VALUES ('c1', '[]', 0)")
    db.executemany(
        "INSERT INTO meta (k, v) VALUES (?, ?)",
        [
            ("answers_after", "7"),
            ("revocation_version", "3"),
            ("direct/case/c1/h1", "delivered"),
            ("direct/closure/c1/h2", "refused:gone"),
            ("direct_after:h1", "4"),
        ],
    )
    db.commit()
    db.close()
    ob = Outbox(path)
    assert ob.answers.answers_after == 7
    assert ob.revocation_floor.revocation_version() == 3
    assert ob.direct.done("c1", "case") == {"h1"}
    assert ob.direct.done("c1", "closure") == {"h2"}
    assert ob.direct.took("c1")
    assert not ob.direct.took("c2")
    assert ob.direct.after("h1") == 4
    st = ob.status("c1")
    assert st is not None
    assert st.route == "direct"
    assert not ob.answers.apply_answer_event(7, "c1", "h0", "accept", 1.0)  # seen already
    assert ob.answers.apply_answer_event(8, "c1", "h0", "accept", 1.0)
    ob.revocation_floor.accept_revocation_version(5)
    ob.direct.mark("c1", "destination", "h1")
    assert ob.direct.apply_answer("h2", 9, "c1", "decline", 2.0, "満床")
    ob.close()
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT k, v FROM meta WHERE k NOT LIKE 'intent:%'"))
    answers = set(db.execute("SELECT hospital_id, answer, reason FROM answers"))
    db.close()
    assert meta == {
        "answers_after": "8",
        "revocation_version": "5",
        "direct/case/c1/h1": "delivered",
        "direct/closure/c1/h2": "refused:gone",
        "direct/destination/c1/h1": "delivered",
        "direct_after:h1": "4",
        "direct_after:h2": "9",
    }
    assert answers == {("h0", "accept", None), ("h2", "decline", "満床")}
