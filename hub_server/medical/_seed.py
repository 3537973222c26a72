"""``seed()``: fills the synthetic source, optionally with virtual cards linked to patients."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from hub_server.medical._generate import generate_record, patient_rng, random_patient_key
from hub_server.medical._record import Record
from hub_server.medical._store import open_source
from hub_server.medical._windows import japan_today

__all__ = ["SeedReport", "SeededCard", "seed"]

# Cards go to the richest of the first CARD_POOL_FACTOR * cards patients, so a
# demo card shows a summary worth looking at.
CARD_POOL_FACTOR = 20


@dataclass(frozen=True, slots=True)
class SeededCard:
    """A virtual card file and the patient it belongs to (no personal data here)."""

    path: Path
    patient_key: str


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What ``seed()`` did."""

    patients: int
    rng_seed: int
    asof: date
    seconds: float
    cards: tuple[SeededCard, ...] = field(default_factory=tuple)
    ca_dir: Path | None = None


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
    cards_dir: Path | None = None,
    ca_dir: Path | None = None,
    cards: int = 0,
    asof: date | None = None,
    key_factory: Callable[[], Any] | None = None,
) -> SeedReport:
    """Replaces the synthetic source in ``db_url`` with ``patients`` patients.

    Patients are a pure function of ``(rng_seed, index, asof)``; their data
    ends at ``asof`` (default: today in Japan). With ``cards`` > 0, that many
    virtual My Number cards are issued by the test CA in ``ca_dir`` (created
    if missing; default ``cards_dir / "ca"``) into ``cards_dir``, each for a
    patient whose key becomes the card's user-auth certificate subject CN.

    Args:
        db_url: SQLAlchemy URL (SQLite file or ``postgresql+psycopg://``).
        patients: how many patients.
        rng_seed: the seed of the synthetic population.
        cards_dir: where the card files go (needed when ``cards`` > 0).
        ca_dir: the test CA directory.
        cards: how many patients get a virtual card (at most ``patients``).
        asof: the last date of the synthetic data.
        key_factory: RSA key factory for the cards (e.g. ``edge.card_sim.KeyPool``).
    """
    if patients < 0 or cards < 0:
        raise ValueError("patients and cards must not be negative")
    if cards > patients:
        raise ValueError("cannot issue more cards than patients")
    if cards and cards_dir is None:
        raise ValueError("cards_dir is needed to issue cards")
    started = time.perf_counter()
    asof = asof or japan_today(datetime.now(UTC))
    pool_size = min(patients, CARD_POOL_FACTOR * cards) if cards else 0
    head: list[tuple[str, Record]] = []
    for i in range(pool_size):
        rng = patient_rng(rng_seed, i)
        head.append((random_patient_key(rng), generate_record(rng, asof)))
    issued: list[SeededCard] = []
    used_ca: Path | None = None
    if cards:
        assert cards_dir is not None
        used_ca = ca_dir or cards_dir / "ca"
        from edge.card_sim import TestCA  # only needed when cards are asked for

        ca = TestCA.open_or_create(used_ca)
        order = sorted(range(pool_size), key=lambda i: (-_richness(head[i][1]), i))[:cards]
        for n, i in enumerate(order):
            path = cards_dir / f"card-{n + 1:03d}.json"
            rng = random.Random(rng_seed * 7919 + i)
            cn = _issue_card(ca, head[i][1], path, rng, key_factory)
            head[i] = (cn, head[i][1])
            issued.append(SeededCard(path, cn))

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
        cards=tuple(issued),
        ca_dir=used_ca,
    )


def _issue_card(
    ca: Any,
    rec: Record,
    path: Path,
    rng: random.Random,
    key_factory: Callable[[], Any] | None,
) -> str:
    """Issues the patient's virtual card; returns its auth certificate subject CN."""
    # Imported here: the hub runs without the card simulator unless cards are asked for.
    from cryptography.x509.oid import NameOID

    from edge.card_sim import Holder

    p = rec["p"]
    holder = Holder(
        name=f"{p['family']}\u3000{p['given']}",
        address=f"{p['prefecture']}{p['city']}{p['line']}",
        birth_date=date.fromisoformat(p["birth_date"]),
        sex=p["sex"],
        security_code=f"{rng.randrange(10000):04d}",
    )
    image = ca.issue_card(holder=holder, rng=rng, key_factory=key_factory)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    attrs = image.auth_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value)
