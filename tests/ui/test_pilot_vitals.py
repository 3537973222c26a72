"""Two vital sets by clicks (Textual Pilot), against a real hub: both stay listed with their
times, the first is selected and corrected, its flag and time kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from edge.flow import JST, Stage
from edge.ui import EdgeApp
from tests.edge._world import TapReader, World, make_flow
from tests.ui._pilot import PANEL, screen_text, wait_stage, wait_text

pytestmark = pytest.mark.anyio

_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


async def tap(pilot: Pilot[None], app: EdgeApp, selector: str) -> None:
    """Click a widget of the body, scrolled into view first (the body scrolls)."""
    app.screen.query_one(selector).scroll_visible(animate=False, immediate=True)
    await pilot.pause()
    await pilot.click(selector)
    await pilot.pause()


async def key(pilot: Pilot[None], digits: str) -> None:
    for d in digits:
        await pilot.click(f"#key-{d}")
    await pilot.click("#pad-ok")
    await pilot.pause()


async def test_two_sets_both_listed_and_the_first_corrected(world: World, tmp_path: Path) -> None:
    flow = make_flow(world, tmp_path, cards=TapReader())
    app = EdgeApp(flow, idle_timeout_s=300)
    _open.append(app)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#primary")  # カードなしで開始
        await wait_stage(pilot, app, Stage.VITALS)
        await tap(pilot, app, "#vital-systolic")
        await key(pilot, "300")
        await wait_text(pilot, app, "⚠ 血圧(上) 300")
        (first,) = app.flow.view().vitals
        assert first.observed_at is not None
        first_time = first.observed_at.astimezone(JST).strftime("%H:%M")
        await wait_text(pilot, app, f"1回目 {first_time}  BP 300⚠◆")

        await tap(pilot, app, "#new-set")  # ＋新しい測定
        await wait_text(pilot, app, "2回目")
        await tap(pilot, app, "#vital-systolic")
        await key(pilot, "120")
        await wait_text(pilot, app, "▶ 2回目")
        second = app.flow.view().vitals[0]
        assert second.observed_at is not None
        second_time = second.observed_at.astimezone(JST).strftime("%H:%M")
        text = screen_text(app)
        # Both sets listed, newest first, each with its time; the first keeps its flag.
        assert f"▶ 2回目 {second_time}  BP 120" in text
        assert f"  1回目 {first_time}  BP 300⚠◆" in text
        assert text.index("2回目 ") < text.index("1回目 ")
        assert "⚠ 血圧(上)" not in text  # the tiles show the set being edited (120)

        # Select the first set and correct it: its values are on the tiles again.
        await tap(pilot, app, "#vset-1")
        await wait_text(pilot, app, "1回目（")
        await wait_text(pilot, app, "⚠ 血圧(上) 300")
        await tap(pilot, app, "#vital-diastolic")
        await key(pilot, "60")
        await wait_text(pilot, app, f"▶ 1回目 {first_time}  BP 300⚠◆/60")
        newest, oldest = app.flow.view().vitals
        assert (oldest.systolic, oldest.diastolic, oldest.observed_at) == (
            300,
            60,
            first.observed_at,
        )
        assert (newest.systolic, newest.diastolic) == (120, None)
        assert oldest.flagged() == ("systolic",)

        # The crew corrects when the first set was taken: one minute earlier.
        corrected = first.observed_at.astimezone(JST).replace(second=0, microsecond=0)
        corrected = corrected.replace(minute=(corrected.minute + 59) % 60)
        if corrected.minute == 59:
            corrected = corrected.replace(hour=(corrected.hour + 23) % 24)
        await tap(pilot, app, "#vitals-time")
        await key(pilot, corrected.strftime("%H%M"))
        await wait_text(pilot, app, f"▶ 1回目 {corrected:%H:%M}  BP 300⚠◆/60")
        assert "測定時刻 " + f"{corrected:%H:%M}" in screen_text(app)
        assert app.flow.view().vitals[0].systolic == 120  # the other set untouched


async def test_pad_shows_abnormal_and_out_of_range_while_keying(
    world: World, tmp_path: Path
) -> None:
    """The pad marks a value as the set list does: ◆ past the alert threshold (180 mmHg),
    ⚠ outside the plausible range (40-280), both for 2000 and for 20."""
    from textual.widgets import Static

    flow = make_flow(world, tmp_path, cards=TapReader())
    app = EdgeApp(flow, idle_timeout_s=300)
    _open.append(app)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#primary")  # カードなしで開始
        await wait_stage(pilot, app, Stage.VITALS)
        await tap(pilot, app, "#vital-systolic")

        def flag() -> str:
            return str(app.screen.query_one("#pad-flag", Static).render())

        seen = {}
        for digit, shown in (("2", "2"), ("0", "20"), ("0", "200"), ("0", "2000")):
            await pilot.click(f"#key-{digit}")
            await pilot.pause()
            seen[shown] = flag()
        assert seen["200"] == "◆ 異常値"
        assert "⚠" in seen["2000"]
        assert "◆" in seen["2000"]
        # 2 and 20 are below the low threshold (90): abnormal too, and 20 out of range.
        assert "◆" in seen["20"]
        assert "⚠" in seen["20"]
        await pilot.click("#pad-cancel")
        await pilot.pause()
