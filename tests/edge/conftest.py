"""The flow tests' real platform (one per session: seeding cards takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.edge._world import World, running_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("edge-world")) as w:
        yield w
