"""Fixtures of the card simulator suite: one test CA and a small key pool per session."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from edge.card_sim import CardImage, KeyPool, TestCA


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return KeyPool(4)


@pytest.fixture(scope="session")
def test_ca(key_pool: KeyPool) -> TestCA:
    return TestCA.create(key_factory=key_pool)


@pytest.fixture
def issue(test_ca: TestCA) -> Callable[..., CardImage]:
    """``issue(**kw)``: a fresh card image (deterministic holder per test)."""
    rng = random.Random(1234)

    def make(**kw: object) -> CardImage:
        kw.setdefault("rng", rng)
        return test_ca.issue_card(**kw)  # type: ignore[arg-type]

    return make
