"""Fixtures of the jpki suite: a test CA and cards from the simulator, trust stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.card_sim import CardImage, KeyPool, TestCA
from edge.jpki.trust import TrustStore, cvc_ca_key


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return KeyPool(4)


@pytest.fixture(scope="session")
def test_ca(key_pool: KeyPool) -> TestCA:
    return TestCA.create(key_factory=key_pool)


@pytest.fixture(scope="session")
def card_image(test_ca: TestCA) -> CardImage:
    return test_ca.issue_card(profile="card", pin="1234")


@pytest.fixture
def fresh_image(test_ca: TestCA) -> CardImage:
    """A card of its own (tests that spend PIN tries)."""
    return test_ca.issue_card(profile="card", pin="1234")


def store_of(ca: TestCA) -> TrustStore:
    """A test-mode store with ``ca``'s roots and its CVC CA key (by key id)."""
    return TrustStore.from_certificates(
        ca.roots,
        allow_test_roots=True,
        cvc_keys=[cvc_ca_key(ca.cvc_ca_key_id, ca.cvc_ca_public_key)],
    )


@pytest.fixture(scope="session")
def test_store(test_ca: TestCA) -> TrustStore:
    return store_of(test_ca)


@pytest.fixture(scope="session")
def test_roots_dir(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return test_ca.write_roots(tmp_path_factory.mktemp("test-roots"))
