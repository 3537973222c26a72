"""The summary at a glance, clicked through against the real platform at the panel's size:
a typical patient (5 conditions, 10 drugs) fits two screens, one line per drug, and the
consent / identity head stays on screen however far the crew scrolls."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.containers import VerticalScroll

from edge.card_sim import VirtualCard
from edge.flow import Stage
from edge.ui import EdgeApp
from tests.edge._world import TapReader, World, make_flow
from tests.ui._patients import DRUGS, typical_patient
from tests.ui._pilot import PANEL, screen_text, wait_stage

pytestmark = pytest.mark.anyio

_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


def _pages(body: VerticalScroll) -> int:
    return math.ceil(body.virtual_size.height / body.scrollable_content_region.height)


async def test_typical_patient_fits_two_screens_with_the_head_pinned(
    world: World, tmp_path: Path
) -> None:
    reader = TapReader()
    flow = make_flow(world, tmp_path, cards=reader)
    app = EdgeApp(flow, idle_timeout_s=300)
    _open.append(app)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(typical_patient(world)))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#primary")  # 口頭同意あり
        await wait_stage(pilot, app, Stage.IDENTITY)
        await pilot.click("#primary")  # 顔写真で本人確認済み
        await wait_stage(pilot, app, Stage.SUMMARY)

        meds = next(s for s in app.flow.view().summary if s.key == "medications")
        assert len(meds.lines) == len(DRUGS)  # one line per drug, not per refill
        assert all("計" in line and "回" in line for line in meds.lines)
        text = screen_text(app)
        assert "薬剤情報（10剤）" in text
        assert text.index("アレルギー・副作用") < text.index("傷病名") < text.index("薬剤情報")
        assert "ペニシリン" in text

        body = app.screen.query_one("#body", VerticalScroll)
        head = app.screen.query_one("#summary-head")
        assert body.max_scroll_y > 0  # more than one screen: scrolling is really tested
        assert _pages(body) <= 2, (body.virtual_size, body.scrollable_content_region)
        before = head.region

        body.focus()
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        assert head.region == before  # pinned: same place, still on screen
        assert head.region.bottom <= body.region.y
        assert app.screen.get_widget_at(before.x + 2, before.y)[0].id == "consent-state"
        assert "口頭同意あり" in str(app.screen.query_one("#consent-state").render())
        # The last section is on screen now: nothing is cut off at the bottom.
        last = list(body.children)[-1]
        assert body.region.contains_region(last.region)
