"""The UI tests' real platform (hub, synthetic patients with cards, hospitals, device)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.edge._world import World, running_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("ui-world")) as w:
        yield w


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio (anyio's pytest plugin; no extra plugin needed)."""
    return "asyncio"
