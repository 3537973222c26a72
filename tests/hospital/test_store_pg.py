"""The hospital's own database on PostgreSQL (by URL) and SQLite: same behaviour."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from hospital.auth import Authenticator, LoginRefused, add_user
from hospital.settings import HospitalSettings
from hospital.store import HospitalStore
from tests.components import fresh_postgres_database
from tests.hospital._world import make_bundle


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HospitalStore]:
    key = os.urandom(32)
    if request.param == "sqlite":
        s = HospitalStore(f"sqlite:///{tmp_path / 'h.db'}", key)
        yield s
        s.close()
        return
    with fresh_postgres_database() as url:
        s = HospitalStore(url, key)
        yield s
        s.close()


def test_cases_answers_purge_and_sign_in(store: HospitalStore, tmp_path: Path) -> None:
    bundle = make_bundle("c-1", "d-1", chief_complaint="呼吸困難\u2028🚑")
    assert store.add_case(case_id="c-1", event_id=1, device_id="d-1", sealed_at=1, bundle=bundle)
    assert not store.add_case(
        case_id="c-1", event_id=2, device_id="d-1", sealed_at=1, bundle=bundle
    )
    row = store.case("c-1")
    assert row is not None
    assert store.bundle_of(row) == bundle
    store.set_answer("c-1", answer="decline", reason="手術中", by="alice")
    assert store.set_destination("c-1", False)
    row = store.case("c-1")
    assert row is not None
    assert (row.answer, row.answer_reason, row.destination) == ("decline", "手術中", "elsewhere")
    assert row.answered_at is not None
    assert row.answered_at.tzinfo is not None
    feed = store.direct_answers("d-1", 0)  # the device's direct answer feed
    assert [(a["case_id"], a["answer"], a["reason"]) for a in feed] == [
        ("c-1", "decline", "手術中")
    ]
    assert store.direct_answers("d-1", feed[0]["seq"]) == []
    assert store.direct_answers("d-2", 0) == []

    secret, _ = add_user(store, "alice", "Alice", "long enough password")
    auth = Authenticator(store, HospitalSettings(data_dir=tmp_path))
    code = pyotp.TOTP(secret).now()  # once: two calls may straddle a 30 s step
    token, info = auth.login("alice", "long enough password", code, "t")
    assert auth.session(token) == info
    with pytest.raises(LoginRefused):  # the same code again: a replay
        auth.login("alice", "long enough password", code, "t")

    assert store.purge(3600) == 0
    time.sleep(0.01)
    assert store.purge(0) == 1
    assert store.cases() == []


def test_a_closure_time_utc_cannot_hold_is_kept_clamped(store: HospitalStore) -> None:
    """A device clock at 0001-01-01+14:00 (before UTC's calendar) still closes the case."""
    from datetime import datetime, timedelta, timezone

    bundle = make_bundle("c-9", "d-1")
    store.add_case(case_id="c-9", event_id=1, device_id="d-1", sealed_at=1, bundle=bundle)
    odd = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    assert store.add_closure(case_id="c-9", event_id=2, reason="不搬送", closed_at=odd)
    reason, closed_at = store.closures(["c-9"])["c-9"]
    assert reason == "不搬送"
    assert closed_at.year == 1
