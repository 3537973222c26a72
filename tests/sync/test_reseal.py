"""The outbox's side of a case refused for its envelope version (``sync.reseal``): the
refused row swapped for the one sealed again (its place, a new key), or recorded refused
with what was queued after it; the bound (one re-seal per directory version); and what a
directory version depends on. The whole path with a real hub: tests/edge/test_reseal.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync import OutboxError, PlatformError, TransportError, seal_case
from sync.outbox import Outbox, PendingCase
from sync.reseal import VERSION_REFUSED, ResealBook, directory_version, version_refused
from sync.seal import SealingKeys
from sync.xwing import XWingPrivateKey

DEVICE = Ed25519PrivateKey.generate()
X = {f"h{i}": X25519PrivateKey.generate().public_key() for i in range(2)}
XW = {f"h{i}": XWingPrivateKey.generate().public_key() for i in range(2)}


def _sealed(case_id: str, recipients: tuple[str, ...] = ("h0", "h1"), version: int = 1) -> bytes:
    keys = {h: SealingKeys(x25519=X[h], xwing=XW[h] if version == 2 else None) for h in recipients}
    return seal_case(b"{}", case_id=case_id, device_id="dev-1", device_key=DEVICE, recipients=keys)


class Stub:
    """A resealer answering from a list: bytes, None, or an exception to raise."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.told: list[str] = []

    def reseal(self, case: PendingCase) -> bytes | None:
        self.asked.append(case.case_id)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    def refused(self, case_id: str, kind: str = "case") -> None:
        self.told.append(case_id if kind == "case" else f"{kind}:{case_id}")


def _queued(tmp_path: Path) -> tuple[Outbox, PendingCase]:
    ob = Outbox(tmp_path / "o.db")
    first = ob.enqueue(_sealed("c1"))
    ob.enqueue_intent("c1", "destination", json.dumps({"hospital_id": "h0"}).encode(), ["h0"])
    (due,) = ob.due()
    assert due == first
    return ob, due


def test_resealed_takes_the_refused_rows_place_under_a_new_key(tmp_path: Path) -> None:
    ob, refused = _queued(tmp_path)
    stub = Stub(_sealed("c1", ("h1",), version=2))
    assert version_refused(ob, refused, stub) == "resealed"
    new = ob.get("c1")
    assert new is not None
    assert new.idempotency_key != refused.idempotency_key
    assert new.recipients == ("h1",)
    assert new.envelope[4] == 2
    assert ob.pending_by_kind() == {"case": 1, "destination": 1}  # one live case row
    assert [r.kind for r in ob.due()] == ["case"]  # due now, still before its destination
    status = ob.status("c1")
    assert status is not None
    assert (status.recipients, status.last_error) == (("h1",), VERSION_REFUSED)
    assert stub.told == []


def test_not_sealed_again_is_recorded_refused_with_its_intents(tmp_path: Path) -> None:
    ob, refused = _queued(tmp_path)
    stub = Stub(None)
    assert version_refused(ob, refused, stub) == "refused"
    assert ob.pending_count() == 0  # nothing left to post, ever
    assert ob.intent_state("c1", "case") == f"refused:{VERSION_REFUSED}"
    assert ob.intent_state("c1", "destination") == f"refused:{VERSION_REFUSED}"
    status = ob.status("c1")
    assert status is not None
    assert (status.delivered_at, status.last_error) == (None, VERSION_REFUSED)
    assert stub.told == ["c1"]  # told once the outbox has it


def test_without_a_resealer_or_with_a_broken_one_the_case_is_refused(tmp_path: Path) -> None:
    ob, refused = _queued(tmp_path)
    assert version_refused(ob, refused, None) == "refused"
    assert ob.get("c1") is None
    ob2, refused2 = _queued(tmp_path / "b")
    stub = Stub(RuntimeError("bug"))
    assert version_refused(ob2, refused2, stub) == "refused"
    assert stub.told == ["c1"]


def test_no_directory_leaves_the_case_waiting(tmp_path: Path) -> None:
    ob, refused = _queued(tmp_path)
    stub = Stub(TransportError("down"))
    assert isinstance(stub.answers[0], PlatformError)
    assert version_refused(ob, refused, stub) == "waiting"
    waiting = ob.get("c1")
    assert waiting is not None
    assert waiting.attempts == 1
    assert waiting.idempotency_key == refused.idempotency_key
    assert ob.intent_state("c1", "case") is None


def test_a_case_is_dropped_for_its_envelope_version_only(tmp_path: Path) -> None:
    ob, _ = _queued(tmp_path)
    with pytest.raises(OutboxError):
        ob.mark_refused("c1", "case", "invalid_input")
    with pytest.raises(OutboxError):
        ob.replace_case("c1", _sealed("c2"))  # another case's envelope
    assert ob.get("c1") is not None


def _closing(tmp_path: Path) -> tuple[Outbox, PendingCase]:
    """A delivered case whose v1 closure waits (the platform refuses it under require_pq)."""
    ob = Outbox(tmp_path / "o.db")
    ob.enqueue(_sealed("c1"))
    ob.mark_delivered("c1")
    assert ob.close_case("c1", _sealed("c1")) is True
    (due,) = ob.due()
    assert due.kind == "closure"
    return ob, due


def test_a_refused_closure_is_sealed_again_in_its_place(tmp_path: Path) -> None:
    ob, refused = _closing(tmp_path)
    stub = Stub(_sealed("c1", ("h1",), version=2))
    assert version_refused(ob, refused, stub) == "resealed"
    (new,) = ob.due()
    assert (new.kind, new.recipients, new.envelope[4]) == ("closure", ("h1",), 2)
    assert new.idempotency_key != refused.idempotency_key
    assert ob.intent_state("c1", "closure") == "pending"
    status = ob.status("c1")
    assert status is not None
    assert status.delivered_at is not None  # the case itself stays delivered
    assert stub.asked == ["c1"]
    assert stub.told == []


def test_a_closure_not_sealed_again_is_recorded_refused_alone(tmp_path: Path) -> None:
    ob, refused = _closing(tmp_path)
    stub = Stub(None)
    assert version_refused(ob, refused, stub) == "refused"
    assert ob.pending_count() == 0
    assert ob.intent_state("c1", "closure") == f"refused:{VERSION_REFUSED}"
    assert ob.intent_state("c1", "case") is None  # the case was delivered: not refused
    assert stub.told == ["closure:c1"]
    with pytest.raises(OutboxError):
        ob.replace_case("c1", _sealed("c1"), kind="destination")


def test_one_reseal_per_directory_version() -> None:
    book = ResealBook()
    assert not book.may_reseal("c1", "v-a")  # never sealed here (after a restart)
    book.sealed("c1", "v-a")
    assert not book.may_reseal("c1", "v-a")
    assert book.may_reseal("c1", "v-b")
    book.sealed("c1", "v-b")
    assert not book.may_reseal("c1", "v-b")
    assert not book.may_reseal("c1", "v-a")
    book.forget()
    assert not book.may_reseal("c1", "v-c")


def test_a_directory_version_is_its_policy_and_keys() -> None:
    plain = [(h, SealingKeys(x25519=X[h])) for h in X]
    hybrid = [(h, SealingKeys(x25519=X[h], xwing=XW[h])) for h in X]
    v = directory_version(False, plain)
    assert v == directory_version(False, list(reversed(plain)))
    assert v != directory_version(True, plain)
    assert v != directory_version(False, hybrid)
    assert v != directory_version(False, plain[:1])
