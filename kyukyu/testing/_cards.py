"""Demo and test cards: the synthetic medical source seeded, some patients holding a
virtual My Number card issued by the test CA (``edge.card_sim``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.x509.oid import NameOID

from edge.card_sim import Holder, TestCA
from hub_server.medical import seed

__all__ = ["CardSeedReport", "SeededCard", "seed_with_cards"]


@dataclass(frozen=True, slots=True)
class SeededCard:
    """A virtual card file and the patient it belongs to (no personal data here)."""

    path: Path
    patient_key: str


@dataclass(frozen=True, slots=True)
class CardSeedReport:
    """What ``seed_with_cards()`` did."""

    patients: int
    rng_seed: int
    asof: date
    seconds: float
    cards: tuple[SeededCard, ...] = field(default_factory=tuple)
    ca_dir: Path | None = None


def seed_with_cards(
    db_url: str,
    *,
    patients: int,
    rng_seed: int = 0,
    cards_dir: Path | None = None,
    ca_dir: Path | None = None,
    cards: int = 0,
    asof: date | None = None,
    key_factory: Callable[[], Any] | None = None,
) -> CardSeedReport:
    """Seed the synthetic source (``hub_server.medical.seed``) and issue ``cards`` cards.

    The test CA in ``ca_dir`` (created if missing; default ``cards_dir / "ca"``)
    issues each card into ``cards_dir`` for a patient with something to show; the
    card's user-auth certificate subject CN becomes that patient's key.

    Args:
        db_url: SQLAlchemy URL of the synthetic source.
        patients: how many patients.
        rng_seed: the seed of the synthetic population (and of the cards).
        cards_dir: where the card files go (needed when ``cards`` > 0).
        ca_dir: the test CA directory.
        cards: how many patients get a virtual card (at most ``patients``).
        asof: the last date of the synthetic data.
        key_factory: RSA key factory for the cards (e.g. ``edge.card_sim.KeyPool``).
    """
    if cards > patients:
        raise ValueError("cannot issue more cards than patients")
    if cards and cards_dir is None:
        raise ValueError("cards_dir is needed to issue cards")
    issued: list[SeededCard] = []
    used_ca: Path | None = None
    link = None
    if cards:
        assert cards_dir is not None
        used_ca = ca_dir or cards_dir / "ca"
        ca = TestCA.open_or_create(used_ca)
        folder = cards_dir

        def link(person: Mapping[str, Any], rng: random.Random) -> str:
            path = folder / f"card-{len(issued) + 1:03d}.json"
            cn = _issue_card(ca, person, path, rng, key_factory)
            issued.append(SeededCard(path, cn))
            return cn

    report = seed(db_url, patients=patients, rng_seed=rng_seed, asof=asof, linked=cards, link=link)
    return CardSeedReport(
        patients=report.patients,
        rng_seed=report.rng_seed,
        asof=report.asof,
        seconds=report.seconds,
        cards=tuple(issued),
        ca_dir=used_ca,
    )


def _issue_card(
    ca: TestCA,
    p: Mapping[str, Any],
    path: Path,
    rng: random.Random,
    key_factory: Callable[[], Any] | None,
) -> str:
    """Issues the patient's virtual card; returns its auth certificate subject CN."""
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
