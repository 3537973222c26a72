"""Fixtures of the jpki suite: a test CA and cards from the simulator, trust stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edge.card_sim import CardImage, KeyPool, TestCA
from edge.jpki.trust import TrustStore


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


@pytest.fixture(scope="session")
def test_store(test_ca: TestCA) -> TrustStore:
    return TrustStore.from_certificates(test_ca.roots, allow_test_roots=True)


@pytest.fixture(scope="session")
def test_roots_dir(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("test-roots")
    for i, cert in enumerate(test_ca.roots):
        (d / f"root{i}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return d
