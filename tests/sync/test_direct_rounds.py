"""The direct route's round (``DirectRoute.round``, every second or so during an outage):
it reads the rows without their envelopes and loads one only for a post; the ledger's
per-case lookups are key ranges (a case id that is a prefix of another is not mixed
up); an unreachable hospital's answer feed waits out its pause; only the hospitals that
got a case by this route are asked for answers."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync import TransportError, seal_case
from sync._backoff import Backoff
from sync.direct import DirectRoute
from sync.outbox import Outbox, PendingCase

DEVICE = Ed25519PrivateKey.generate()


def _sealed(case_id: str, recipients: list[str]) -> bytes:
    keys = {h: X25519PrivateKey.generate().public_key() for h in recipients}
    return seal_case(b"x", case_id=case_id, device_id="d1", device_key=DEVICE, recipients=keys)


class _Hospital:
    """A hospital's direct endpoint as the route calls it (``DirectClient``)."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.posted: list[PendingCase] = []
        self.polls = 0

    def post(self, row: PendingCase) -> None:
        if not self.up:
            raise TransportError("down")
        self.posted.append(row)

    def answers(self, after: int) -> list[dict[str, Any]]:
        self.polls += 1
        if not self.up:
            raise TransportError("down")
        return []

    def close(self) -> None:
        pass


class _Longest(random.Random):
    """The backoff's jitter at its top: the pause is the cap (5 s)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _route(outbox: Outbox, clock: list[float]) -> DirectRoute:
    return DirectRoute(
        outbox,
        [],
        key=DEVICE,
        device_id="d1",
        clock=lambda: clock[0],
        backoff=Backoff(base=5.0, cap=5.0, rng=_Longest()),
        poll_seconds=0.0,
    )


def test_a_post_carries_the_whole_envelope_and_prefix_ids_stay_apart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    env1, env10 = _sealed("c1", ["h1"]), _sealed("c10", ["h1"])
    outbox.enqueue(env1)
    outbox.enqueue(env10)
    assert all(r.envelope == b"" for r in outbox.waiting(envelopes=False))
    route = _route(outbox, [0.0])
    assert route.deliver() == 0  # no hospital has a direct address: nothing read
    h1 = _Hospital()
    route.clients["h1"] = h1  # type: ignore[assignment]
    assert route.deliver() == 2
    assert [(r.case_id, r.envelope) for r in h1.posted] == [("c1", env1), ("c10", env10)]
    assert outbox.direct.done("c1", "case") == {"h1"}
    assert outbox.direct.done("c10", "case") == {"h1"}
    assert route.deliver() == 0  # both have it
    assert outbox.direct.took("c1")
    with outbox._tx() as db:
        outbox.direct.forget(db, ["c1"], ["case"])
    assert outbox.direct.done("c1", "case") == set()
    assert outbox.direct.done("c10", "case") == {"h1"}  # c1's forgetting left c10 alone
    outbox.close()


def test_answer_feeds_back_off_and_only_holders_are_asked(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    clock = [100.0]
    route = _route(outbox, clock)
    h1, h2 = _Hospital(up=False), _Hospital()
    route.clients.update({"h1": h1, "h2": h2})  # type: ignore[dict-item]
    route.poll_answers()
    assert (h1.polls, h2.polls) == (0, 0)  # neither got a case directly: no answers to read
    outbox.direct.mark("c1", "case", "h1")
    outbox.direct.mark("c2", "case", "h2", "refused:gone")
    route.poll_answers()
    assert (h1.polls, h2.polls) == (1, 0)
    route.poll_answers()  # h1 failed: it waits out its pause (5 s)
    assert h1.polls == 1
    clock[0] += 5.0
    h1.up = True
    route.poll_answers()
    assert h1.polls == 2
    route.poll_answers()  # read fine: asked again at once
    assert h1.polls == 3
    outbox.close()
