"""Touches from the card read to the summary on screen: at most 2 for a conscious patient
(consent, face check), at most 1 for an unconscious one. Every tap is counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from edge.card_sim import VirtualCard
from edge.flow import Stage
from edge.ui import EdgeApp
from tests.edge._world import TapReader, World, make_flow
from tests.ui._pilot import PANEL, screen_text, wait_stage

pytestmark = pytest.mark.anyio


class Finger:
    """Taps the primary action or a named button; counts every tap."""

    def __init__(self, pilot: Pilot[None], app: EdgeApp) -> None:
        self.pilot = pilot
        self.app = app
        self.taps = 0

    async def tap(self, selector: str) -> None:
        self.taps += 1
        await self.pilot.click(selector)


async def _to_summary(world: World, tmp_path: Path, conscious: bool) -> int:
    reader = TapReader()
    app = EdgeApp(make_flow(world, tmp_path, cards=reader))
    try:
        return await _count(app, reader, world, conscious)
    finally:
        app.flow.close()


async def _count(app: EdgeApp, reader: TapReader, world: World, conscious: bool) -> int:
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)  # the card is read
        finger = Finger(pilot, app)
        if conscious:
            await finger.tap("#primary")  # 口頭同意あり (same place as every primary action)
            await wait_stage(pilot, app, Stage.IDENTITY)
            await finger.tap("#primary")  # 顔写真で本人確認済み
        else:
            await finger.tap("#consent-unconscious")
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert "アレルギー・副作用" in screen_text(app)
        return finger.taps


async def test_conscious_patient_two_touches(world: World, tmp_path: Path) -> None:
    assert await _to_summary(world, tmp_path, conscious=True) <= 2


async def test_unconscious_patient_one_touch(world: World, tmp_path: Path) -> None:
    assert await _to_summary(world, tmp_path, conscious=False) <= 1


async def test_primary_action_is_always_in_the_same_place(world: World, tmp_path: Path) -> None:
    """The primary button sits bottom right on every screen; every button is 3+ rows."""
    reader = TapReader()
    app = EdgeApp(make_flow(world, tmp_path, cards=reader))
    places = set()
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        for stage in (Stage.CONSENT, Stage.IDENTITY, Stage.SUMMARY, Stage.VITALS):
            await wait_stage(pilot, app, stage)
            r = app.screen.query_one("#primary").region
            assert r.height >= 3  # a gloved finger's target
            for b in app.screen.query(Button):
                assert b.outer_size.height >= 3, (stage, b.id)
            places.add((r.right, r.bottom))
            await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.HOSPITALS)
        r = app.screen.query_one("#primary").region
        places.add((r.right, r.bottom))
    app.flow.close()
    assert len(places) == 1
