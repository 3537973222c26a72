"""Read back what the real hub holds: events per (hospital, case), straight from its database."""

from __future__ import annotations

from collections import Counter
from typing import Any


def case_events(state: Any) -> Counter[tuple[str, str]]:
    """How many ``case`` events each (hospital id, case id) pair got."""
    from sqlmodel import select

    from hub_server.models import Event

    counts: Counter[tuple[str, str]] = Counter()
    with state.session() as session:
        for ev in session.exec(select(Event).where(Event.kind == "case")).all():
            counts[(ev.recipient.split(":", 1)[1], ev.case_id)] += 1
    return counts


def assert_exactly_once(state: Any, hospital_ids: list[str], case_ids: list[str]) -> None:
    counts = case_events(state)
    expected = {(h, c) for h in hospital_ids for c in case_ids}
    missing = expected - set(counts)
    dupes = {k: n for k, n in counts.items() if n != 1}
    extra = set(counts) - expected
    assert not missing, f"{len(missing)} deliveries missing, e.g. {sorted(missing)[:3]}"
    assert not dupes, f"duplicated deliveries: {list(dupes.items())[:3]}"
    assert not extra, f"unexpected deliveries: {sorted(extra)[:3]}"
