"""Fixtures shared by every suite: the real components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.jpki.bundled import bundled_roots
from tests.components import Pcscd, fresh_postgres_database, running_pcscd


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
def jpki_roots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real public J-LIS roots the package ships (edge/jpki/roots), each checked
    against its pinned fingerprint, copied to a directory of their own under J-LIS's
    file names (auth-ca-2015.pem ...): no test can alter the package's copies."""
    directory = tmp_path_factory.mktemp("jpki-roots")
    for root in bundled_roots():
        (directory / root.file).write_bytes(root.pem())
    return directory
