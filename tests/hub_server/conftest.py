"""Fixtures of the hub suite: every storage test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hub_server.core.config import Settings
from tests.components import fresh_postgres_database
from tests.hub_server._support import Hub, hub_in_process


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database (PostgreSQL: a new database; fails when PostgreSQL is absent)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / f'hub-{uuid.uuid4().hex[:6]}.db'}"
        return
    request.getfixturevalue("postgres_url")  # fails clearly when PostgreSQL is absent
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("test-ca")


@pytest.fixture(scope="session")
def test_ca(ca_dir: Path) -> Any:
    from edge.card_sim import KeyPool, TestCA

    return TestCA.create(ca_dir, key_factory=KeyPool(3))


@pytest.fixture(scope="session")
def roots_dir(test_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("roots")
    for name, cert in (("auth", test_ca.auth_root), ("phone", test_ca.phone_auth_root)):
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return d


@pytest.fixture(scope="session")
def card(test_ca: Any) -> Any:
    return test_ca.issue_card()


class FakeMedical:
    """Stands in for the synthetic source where a test only needs 'a Bundle'."""

    def __init__(self) -> None:
        self.known: dict[str, dict[str, Any]] = {}

    def summary(self, patient_key: str, *, now: Any, full: bool = False) -> dict[str, Any] | None:
        return self.known.get(patient_key)


@pytest.fixture
def settings(db_url: str, roots_dir: Path) -> Settings:
    return Settings(
        db_url=db_url,
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
        pool_size=5,
    )


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    async with hub_in_process(settings, medical_source=FakeMedical()) as served:
        yield served


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database of its own (the tests that are PostgreSQL's only)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def pg_hub(pg_url: str, roots_dir: Path) -> AsyncIterator[Hub]:
    """A hub in this process on ``pg_url``."""
    settings = Settings(
        db_url=pg_url,
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
        pool_size=5,
    )
    async with hub_in_process(settings) as hub:
        yield hub
