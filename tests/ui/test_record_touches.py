"""A typical full record by touches (Textual Pilot), every tap counted: one set with BP,
pulse, respiration, SpO2, temperature, JCS, O2 and GCS; four time stamps (覚知 / 現着 /
接触 / 現発); one treatment; a second set that starts from the first and changes two
values. The issue's budget is 50 touches; the record that results is checked whole, as
it would be sealed. (Scrolling a widget into view is not a tap and is not counted.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from edge.flow import Stage
from edge.ui import EdgeApp
from sync.fhir_case import build_case_bundle
from tests.edge._world import TapReader, World, make_flow
from tests.ui._pilot import PANEL, wait_stage, wait_text

pytestmark = pytest.mark.anyio

_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


class Finger:
    def __init__(self, pilot: Pilot[None], app: EdgeApp) -> None:
        self.pilot = pilot
        self.app = app
        self.taps = 0

    async def tap(self, selector: str) -> None:
        """One touch; a widget of the scrolling body is brought into view first."""
        widget = self.app.screen.query_one(selector)
        widget.scroll_visible(animate=False, immediate=True)
        await self.pilot.pause()
        self.taps += 1
        await self.pilot.click(selector)
        await self.pilot.pause()

    async def keys(self, digits: str, then: str) -> None:
        for d in digits:
            await self.tap("#key-dot" if d == "." else f"#key-{d}")
        await self.tap(then)


async def test_typical_full_record_in_at_most_50_touches(world: World, tmp_path: Path) -> None:
    flow = make_flow(world, tmp_path, cards=TapReader())
    app = EdgeApp(flow, idle_timeout_s=300)
    _open.append(app)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#primary")  # カードなしで開始 (the case starts; not the record)
        await wait_stage(pilot, app, Stage.VITALS)
        f = Finger(pilot, app)
        # Set 1: BP 150/90, P 88, R 18, SpO2 95, BT 36.8 on the chained pads.
        await f.tap("#vital-systolic")
        await f.keys("150", "#pad-next")
        await f.keys("90", "#pad-next")
        await f.keys("88", "#pad-next")
        await f.keys("18", "#pad-next")
        await f.keys("95", "#pad-next")
        await f.keys("36.8", "#pad-ok")
        await wait_text(pilot, app, "体温 36.8")
        await f.tap("#vital-o2")
        await f.tap("#pick-4")  # 4L
        await f.tap("#vital-jcs")
        await f.tap("#jcs-1")  # I-1
        await f.tap("#vital-gcs")
        for pick in ("#g-gcs_e-3", "#g-gcs_v-4", "#g-gcs_m-5"):  # E4 V5 M6
            await f.tap(pick)
        await wait_text(pilot, app, "GCS 15")
        for name in ("call_received", "arrived_scene", "patient_contact", "departed_scene"):
            await f.tap(f"#time-{name}")
        await f.tap("#tx-add")
        await f.tap("#pick-0")  # 酸素投与
        await wait_text(pilot, app, "酸素投与")
        first_taps = f.taps
        # Set 2 starts from set 1; pulse and SpO2 change.
        await f.tap("#new-set")
        await f.tap("#vital-pulse")
        await f.keys("92", "#pad-ok")
        await f.tap("#vital-spo2")
        await f.keys("98", "#pad-ok")
        await wait_text(pilot, app, "▶ 2回目")
        taps = f.taps
    view = flow.view()
    second, first = view.vitals
    assert (first.systolic, first.diastolic, first.pulse, first.respiration) == (150, 90, 88, 18)
    assert (first.spo2, first.temperature, first.o2, first.jcs) == (95, 36.8, 4, "1")
    assert (first.gcs_e, first.gcs_v, first.gcs_m, first.gcs_total) == (4, 5, 6, 15)
    assert (second.pulse, second.spo2) == (92, 98)
    assert (second.systolic, second.diastolic, second.temperature, second.gcs_total) == (
        150,
        90,
        36.8,
        15,
    )
    assert [name for name, _ in view.times] == [
        "call_received",
        "arrived_scene",
        "patient_contact",
        "departed_scene",
    ]
    assert [code for code, _, _ in view.treatments] == ["oxygen"]
    bundle = build_case_bundle(flow._record("case-touches"))
    procedures = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Procedure"]
    assert len(procedures) == 1
    print(f"touches: first set with times and treatment {first_taps}, all {taps}")
    assert taps <= 50, taps
