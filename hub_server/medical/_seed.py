"""``seed()``: fills the synthetic source; some patients can be linked to an identity.

The source stays a pure data source: it issues no cards. A caller that wants demo
cards (``kyukyu.testing.seed_with_cards``) passes ``link``, which gets the
demographics of each linked patient and returns the patient key the identity carries
(the card's user-authentication certificate subject CN).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from hub_server.medical._generate import generate_record, patient_rng, random_patient_key
from hub_server.medical._record import Record
from hub_server.medical._store import open_source
from hub_server.medical._windows import japan_today

__all__ = ["LinkPatient", "SeedReport", "seed"]

# Linked patients are the richest of the first LINK_POOL_FACTOR * linked patients, so
# a demo card shows a summary worth looking at.
LINK_POOL_FACTOR = 20

LinkPatient = Callable[[Mapping[str, Any], random.Random], str]
"""Given a patient's demographics (``family``, ``given``, ``birth_date``, ``sex``,
``prefecture``, ``city``, ``line``) and a deterministic ``random.Random``, make an
identity for that patient and return the patient key it carries."""


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What ``seed()`` did (``linked_keys``: the linked patients' keys, in link order)."""

    patients: int
    rng_seed: int
    asof: date
    seconds: float
    linked_keys: tuple[str, ...] = field(default_factory=tuple)


def _dumps(rec: Record) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def _richness(rec: Record) -> int:
    return int(
        3 * len(rec["allergies"])
        + 2 * sum(c["s"] == "active" for c in rec["conditions"])
        + len(rec["regimens"])
        + (5 if rec.get("dx") else 0)
        + len(rec["surgeries"])
    )


def seed(
    db_url: str,
    *,
    patients: int,
    rng_seed: int = 0,
    asof: date | None = None,
    linked: int = 0,
    link: LinkPatient | None = None,
) -> SeedReport:
    """Replaces the synthetic source in ``db_url`` with ``patients`` patients.

    Patients are a pure function of ``(rng_seed, index, asof)``; their data
    ends at ``asof`` (default: today in Japan). With ``linked`` > 0, ``link`` is
    called for that many patients with something to show, and each of them gets
    the patient key ``link`` returns.

    Args:
        db_url: SQLAlchemy URL (SQLite file or ``postgresql+psycopg://``).
        patients: how many patients.
        rng_seed: the seed of the synthetic population.
        asof: the last date of the synthetic data.
        linked: how many patients get an identity from ``link`` (at most ``patients``).
        link: makes the identity (e.g. a virtual card) and returns its patient key.
    """
    if patients < 0 or linked < 0:
        raise ValueError("patients and linked must not be negative")
    if linked > patients:
        raise ValueError("cannot link more patients than there are")
    if linked and link is None:
        raise ValueError("link is needed to link patients")
    started = time.perf_counter()
    asof = asof or japan_today(datetime.now(UTC))
    pool_size = min(patients, LINK_POOL_FACTOR * linked) if linked else 0
    head: list[tuple[str, Record]] = []
    for i in range(pool_size):
        rng = patient_rng(rng_seed, i)
        head.append((random_patient_key(rng), generate_record(rng, asof)))
    keys: list[str] = []
    if linked:
        assert link is not None
        order = sorted(range(pool_size), key=lambda i: (-_richness(head[i][1]), i))[:linked]
        for i in order:
            key = link(dict(head[i][1]["p"]), random.Random(rng_seed * 7919 + i))
            head[i] = (key, head[i][1])
            keys.append(key)

    def rows() -> Iterator[tuple[str, str]]:
        for key, rec in head:
            yield key, _dumps(rec)
        for i in range(pool_size, patients):
            rng = patient_rng(rng_seed, i)
            key = random_patient_key(rng)
            yield key, _dumps(generate_record(rng, asof))

    source = open_source(db_url)
    try:
        n = source.replace_all(rows())
    finally:
        source.engine.dispose()
    return SeedReport(
        patients=n,
        rng_seed=rng_seed,
        asof=asof,
        seconds=time.perf_counter() - started,
        linked_keys=tuple(keys),
    )
