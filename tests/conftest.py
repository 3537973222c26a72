"""Fixtures shared by every suite: the real components."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widget import Widget

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


_textual_click = Pilot.click


async def _click_once_laid_out(self: Pilot[Any], widget: Any = None, *args: Any, **kw: Any) -> bool:
    """Textual's ``Pilot.click`` aims at the target's region on the screen; a widget that
    exists but has not been laid out yet (just rebuilt: a row turning 受入可, a new
    screen) has an empty region, and the click silently lands at the screen's corner.
    On a loaded machine that is a lost tap and a test waiting 60 s for a stage. Wait
    (on the app's own progress, not a fixed time) until the target is laid out."""
    if isinstance(widget, (str, type)):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                target: Widget | None = self.app.screen.query_one(widget)
            except NoMatches:
                target = None
            if target is not None and target.region.area > 0:
                break
            await self.pause()
            await asyncio.sleep(0.01)
    return await _textual_click(self, widget, *args, **kw)


@pytest.fixture(autouse=True)
def _pilot_clicks_wait_for_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pilot, "click", _click_once_laid_out)
