"""A hospital's direct answer feed is a peer's JSON: nonsense items (an answer number
no feed reaches, a year out of range, a wrong type) are skipped one by one and the good
answers around them are kept; a huge number does not move the feed's cursor past them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.direct import DirectRoute
from sync.outbox import Outbox


class _Feed:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def answers(self, after: int) -> list[dict[str, Any]]:
        return [i for i in self.items if not isinstance(i.get("seq"), int) or i["seq"] > after]

    def close(self) -> None:
        pass


def test_nonsense_answers_are_skipped_and_the_good_ones_kept(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    route = DirectRoute(outbox, [], key=Ed25519PrivateKey.generate(), device_id="dev-1")
    outbox.direct.mark("c0", "case", "h1")  # h1 got a case directly: its feed is read
    route.clients["h1"] = _Feed(  # type: ignore[assignment]
        [
            {"seq": 1, "case_id": "c1", "answer": "accept", "answered_at": "2026-12-06T10:00:00"},
            {"seq": 10**30, "case_id": "c2", "answer": "accept"},
            {"seq": 2, "case_id": "c3", "answer": "decline", "answered_at": "0001-01-01T00:00:00"},
            {"seq": "x", "case_id": "c4", "answer": "accept"},
            {"seq": 3, "case_id": "c5", "answer": "maybe"},
            {"seq": 4, "case_id": ["c6"], "answer": "decline", "reason": "満床"},
        ]
    )
    assert route.poll_answers() == 3  # c1, c3 (its time taken as now), and c6's str()
    assert outbox.direct.after("h1") == 4
    assert route.poll_answers() == 0  # the feed's cursor moved past them
    outbox.close()
