"""The device's 多数傷病者 screen, by clicks (Textual Pilot) against the real platform:
from the standby screen, declare an incident; a hospital answers its capacity (its signed
route) and the board on screen shows it (pushed on the device's stream); register a tag
with its category, age band, sex and injury and tap the hospital: the tag's case goes
through the device's outbox to the platform; close: the tally is on screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from edge.flow import Stage
from edge.ui import EdgeApp
from hub_server.models import Case, IncidentPatient
from tests.edge._world import World, make_flow, wait_until
from tests.ui._pilot import screen_text, wait_stage, wait_text

pytestmark = pytest.mark.anyio

_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


async def _type(pilot: object, selector: str, text: str) -> None:
    await pilot.click(selector)  # type: ignore[attr-defined]
    await pilot.press(*text)  # type: ignore[attr-defined]


async def test_declare_register_assign_close_by_clicks(world: World, tmp_path: Path) -> None:
    flow = make_flow(world, tmp_path)
    app = EdgeApp(flow, idle_timeout_s=300)
    _open.append(app)
    target = world.hospitals[0]
    async with app.run_test(size=(140, 90)) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#incident")
        await wait_text(pilot, app, "事案を宣言")
        await _type(pilot, "#place", "Route-2")
        await pilot.click("#kind-0")  # 交通事故
        await _type(pilot, "#count", "12")
        await pilot.click("#declare")
        await wait_text(pilot, app, "未回答")
        from edge.ui.screens.incident import desk_of

        desk = desk_of(flow)
        incident = desk.incident_id
        assert incident is not None
        assert "交通事故 ・ Route-2（推定 12 名）" in screen_text(app)

        with world.hospital_client(target) as c:
            c.http.request_json(
                "POST",
                f"/v1/hospitals/me/incidents/{incident}/capacity",
                body={"red": 1, "yellow": 0, "green": 2},
            )
        await wait_text(pilot, app, f"{target.name}  赤 残1/1  黄 残0/0  緑 残2/2")

        await _type(pilot, "#tag", "T-9")
        await pilot.click("#cat-red")
        await pilot.click("#age-4")  # 30代
        await pilot.click("#sex-female")
        await _type(pilot, "#injury", "open-fracture")
        index = [h["hospital_id"] for h in desk.board["hospitals"]].index(target.id)
        await pilot.click(f"#dest-{index}")
        await wait_text(pilot, app, f"タグ T-9 赤 → {target.name}")
        assert f"{target.name}  赤 残0/1" in screen_text(app)

        with world.state.session() as s:
            row = s.exec(
                select(IncidentPatient).where(IncidentPatient.incident_id == incident)
            ).one()
        assert row.acceptance == "declared_capacity"

        def delivered() -> bool:
            with world.state.session() as s:
                return s.get(Case, row.case_id) is not None

        wait_until(delivered, what="the tag's case at the platform (the outbox sent it)")

        await pilot.click("#close-incident")
        await wait_text(pilot, app, "終了した事案の集計")
        assert f"{target.name}  赤 1  黄 0  緑 0" in screen_text(app)
        await pilot.click("#incident-back")
        await wait_stage(pilot, app, Stage.STANDBY)


def test_board_lines_take_nonsense() -> None:
    """A board with missing or wrong-typed fields still draws (never stops the screen)."""
    from edge.ui.screens.incident import board_lines

    lines = board_lines(
        {
            "hospitals": [
                {"hospital_id": "h1", "name": "甲", "answered": True, "left": [], "capacity": 3},
                {"hospital_id": "h2", "answered": True, "left": {"red": 1}, "capacity": {}},
                "not a hospital",
            ],
            "patients": [{"tag": "T-1", "category": 7, "hospital_id": "h2"}, None],
        }
    )
    assert lines == ["甲  未回答", "?  赤 残1/?  黄 残?/?  緑 残?/?", "タグ T-1 ? → ?"]
    assert board_lines({"hospitals": "x", "patients": {}}) == []
