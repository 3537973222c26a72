"""Helpers for driving the edge app with Textual's Pilot."""

from __future__ import annotations

import time

from textual.pilot import Pilot
from textual.widgets import Button, Static

from edge.flow import Stage
from edge.ui import EdgeApp

PANEL = (100, 30)  # a 7-inch 800x480 panel in a terminal font


def screen_text(app: EdgeApp) -> str:
    out = []
    for w in app.screen.query("Static, Button"):
        if isinstance(w, Button):
            out.append(str(w.label))
        elif isinstance(w, Static):
            out.append(str(w.render()))
    return "\n".join(out)


async def wait_stage(pilot: Pilot[None], app: EdgeApp, stage: Stage, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = app._flow_screen
        if s is not None and s.STAGE is stage and s.is_current and not app.flow.view().busy:
            await pilot.pause()
            return
        await pilot.pause(0.03)
    raise AssertionError(f"stage {stage} not reached; at {app.flow.view().stage}")


async def wait_text(pilot: Pilot[None], app: EdgeApp, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in screen_text(app):
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{text!r} not on screen:\n{screen_text(app)}")
