"""Fixtures shared by every suite: the real components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components import Pcscd, fresh_postgres_database, running_pcscd

SHARED = Path(__file__).resolve().parents[2] / "shared"
JPKI_ROOTS_DIR = SHARED / "jpki-roots"


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    """The real pcscd with vpcd (two virtual readers); fails when not installed."""
    with running_pcscd(tmp_path_factory.mktemp("pcscd")) as info:
        yield info


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL at 127.0.0.1:5432; fails when it is absent."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def jpki_roots_dir() -> Path:
    """The real public J-LIS roots in ../shared/jpki-roots (tests only)."""
    if not JPKI_ROOTS_DIR.is_dir():
        pytest.fail(f"{JPKI_ROOTS_DIR} is missing: the shared folder must sit beside the project")
    return JPKI_ROOTS_DIR
