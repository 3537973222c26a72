"""A view change that arrives while a screen rebuilds must not take the device's screen
down.

A change of what a screen shows rebuilds it (``refresh(recompose=True)``): the old
widgets are removed, then the new ones mounted, and messages are handled in between.
A second change in that gap used to update widgets in place with ``query_one`` and
raise ``NoMatches`` into the app, which ended it: seen in the kiosk after 中止, when the
closure's queue count changed while the standby screen was being rebuilt (the browser
kept showing the dialog of an app that was gone)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from edge.flow import CaseView, Stage
from edge.ui import EdgeApp
from tests.ui._pilot import PANEL, screen_text

pytestmark = pytest.mark.anyio


class SteeredFlow:
    """A flow whose view the test sets; the app is told as a real flow tells it."""

    def __init__(self, view: CaseView) -> None:
        self._view = view
        self._listeners: list[Callable[[CaseView], None]] = []

    def view(self) -> CaseView:
        return self._view

    def set(self, view: CaseView) -> None:
        self._view = view
        for listener in self._listeners:
            listener(view)

    def subscribe(self, listener: Callable[[CaseView], None]) -> None:
        self._listeners.append(listener)

    def cancel_wait(self) -> None:
        pass

    def forget(self) -> None:
        pass


async def test_an_in_place_change_during_a_rebuild_rebuilds_instead_of_crashing() -> None:
    start = CaseView(stage=Stage.STANDBY, reader_ok=True, network_ok=True, platform_ok=True)
    flow = SteeredFlow(start)
    app = EdgeApp(flow, watch_cards=False)  # type: ignore[arg-type]
    async with app.run_test(size=PANEL) as pilot:
        await pilot.pause()
        screen = app._flow_screen
        assert screen is not None
        assert "カードをタッチしてください" in screen_text(app)
        # The gap of a rebuild, held open: the old widget is gone, the new not mounted.
        await screen.query_one("#tap-prompt").remove()
        # A change shown in place (the queue's count in the status bar, busy on the
        # primary button), handled in that gap.
        flow.set(replace(start, waiting_sealed=1, waiting_by_kind=(("closure", 1),)))
        await pilot.pause()
        await pilot.pause()
        assert app.is_running  # the app is still up ...
        assert app.return_code is None
        text = screen_text(app)
        assert "カードをタッチしてください" in text  # ... and the screen whole again
        assert len(app.screen.query("#tap-prompt")) == 1
