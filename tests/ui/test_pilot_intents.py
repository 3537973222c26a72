"""The crew's intents on the screen (Textual Pilot, a real hub): a declined hospital is not
offered as the destination, the phone-acceptance step, and 中止 with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.flow import Stage
from edge.ui import EdgeApp
from hub_server.models import Case
from tests.edge._world import TapReader, World, make_flow, wait_until
from tests.ui._pilot import PANEL, screen_text, wait_stage, wait_text

pytestmark = pytest.mark.anyio

_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


def app_for(world: World, tmp_path: Path) -> EdgeApp:
    app = EdgeApp(make_flow(world, tmp_path, cards=TapReader()), idle_timeout_s=300)
    _open.append(app)
    return app


def hub_destination(world: World, case_id: str) -> str | None:
    with world.state.session() as s:
        case = s.get(Case, case_id)
    assert case is not None
    return case.destination_hospital_id


async def idle(pilot: object, app: EdgeApp) -> None:
    """Tap only when no intent runs (a tap meanwhile is ignored, as on the device)."""
    import time

    deadline = time.monotonic() + 30
    while app.busy and time.monotonic() < deadline:
        await pilot.pause(0.05)  # type: ignore[attr-defined]


async def test_declined_is_not_offered_and_phone_step(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#primary")  # カードなしで開始
        await wait_stage(pilot, app, Stage.VITALS)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.HOSPITALS)
        await idle(pilot, app)
        await pilot.click("#h-0")
        await idle(pilot, app)
        await pilot.click("#primary")
        await wait_text(pilot, app, "送信済み")  # the platform's 201, not before
        (case_id,) = app.flow.sent_case_ids()
        row = app.flow.view().hospitals[0]
        with world.hospital_client({h.id: h for h in world.hospitals}[row.id]) as c:
            c.answer(case_id, "decline", "満床")
        await wait_text(pilot, app, "受入不可（満床）")
        assert not app.screen.query("#dest-0")  # 搬送先に決定 is not offered
        assert "搬送先に決定" not in screen_text(app)
        await pilot.click("#phone-0")
        await wait_text(pilot, app, "電話で受入を確認しましたか？")
        await pilot.click("#phone-cancel")
        await wait_stage(pilot, app, Stage.HOSPITALS)
        assert app.flow.view().destination is None
        assert hub_destination(world, case_id) is None
        await idle(pilot, app)
        await pilot.click("#phone-0")
        await wait_text(pilot, app, "電話で受入を確認しましたか？")
        await pilot.click("#phone-ok")
        await wait_stage(pilot, app, Stage.CONFIRMED)
        await wait_text(pilot, app, "病院へ通知済み")
        assert "電話で受入確認済み" in screen_text(app)
        assert hub_destination(world, case_id) == row.id


async def test_abort_from_the_vitals_and_after_sending(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        assert not app.screen.query("#abort")  # no case: nothing to end
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.VITALS)
        await pilot.click("#cc-1")  # 胸痛
        await pilot.click("#abort")
        await wait_text(pilot, app, "事案を中止しますか？")
        assert "病院へは何も送信しません" in screen_text(app)
        await pilot.click("#abort-no")  # 戻る: the case stays
        await wait_stage(pilot, app, Stage.VITALS)
        assert app.flow.view().chief_complaint == "胸痛"
        await pilot.click("#abort")
        await wait_text(pilot, app, "軽症・自力受診")
        await pilot.click("#abort-2")  # 軽症・自力受診
        await wait_stage(pilot, app, Stage.STANDBY)
        await wait_text(pilot, app, "何も送信していません")
        assert "胸痛" not in screen_text(app)

        # Sent, then ended: the hospital is told (sealed closure), the device forgets.
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.VITALS)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.HOSPITALS)
        await idle(pilot, app)
        await pilot.click("#h-0")
        await idle(pilot, app)
        await pilot.click("#primary")
        await wait_text(pilot, app, "送信済み")
        (case_id,) = app.flow.sent_case_ids()
        await idle(pilot, app)
        await pilot.click("#abort")
        await wait_text(pilot, app, "事案を送った病院には中止と理由を通知します")
        await pilot.click("#abort-0")  # 搬送拒否
        await wait_stage(pilot, app, Stage.STANDBY)
        await wait_text(pilot, app, "中止を通知します")
        wait_until(lambda: app.flow.view().waiting_sealed == 0, what="the closure sent")
        with world.state.session() as s:
            from sqlmodel import select

            from hub_server.models import Event

            kinds = s.exec(select(Event.kind).where(Event.case_id == case_id)).all()
        assert "closure" in kinds
