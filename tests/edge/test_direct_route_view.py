"""The hospitals screen's rows name the route a case took (docs/disaster.md): 直接送信 once
the direct route delivered it, whatever the platform does later."""

from __future__ import annotations

from pathlib import Path

from edge.flow import HospitalRow
from tests.edge._world import Switchable, World, make_flow, wait_until


def test_a_case_that_went_directly_says_so(world: World, tmp_path: Path) -> None:
    real = world.platform()
    platform = Switchable(real)
    platform.down = False
    f = make_flow(world, tmp_path, platform=platform)
    try:
        assert f.refresh_directory()
        platform.down = True  # the platform is cut off
        f.start_without_card()
        f.set_chief_complaint("外傷")
        f.to_hospitals()
        hid = f.view().hospitals[0].id
        f.toggle_hospital(hid)
        f.send_selected()
        (case_id,) = f.sent_case_ids()

        def row() -> HospitalRow:
            return {h.id: h for h in f.view().hospitals}[hid]

        assert row().route is None  # not left yet
        # The direct route delivered it (``sync.direct`` records that in the outbox) ...
        f._outbox.direct.mark(case_id, "case", hid)  # type: ignore[attr-defined]
        platform.down = False  # ... and the platform gets it later (reconciliation)
        wait_until(lambda: f.view().waiting_sealed == 0, timeout=20, what="reconciled")
        wait_until(lambda: row().route == "direct", what="route shown")
    finally:
        f.close()
        real.close()


def test_each_row_says_its_own_route(world: World, tmp_path: Path) -> None:
    """Two hospitals chosen, one got the case directly: only its row says 直接送信; once
    the platform has the case, the other's row reads プラットフォーム経由 and every row
    knows the platform has it (no "cannot be reached" above them)."""
    real = world.platform()
    platform = Switchable(real)
    platform.down = False
    f = make_flow(world, tmp_path, platform=platform)
    try:
        assert f.refresh_directory()
        platform.down = True
        f.start_without_card()
        f.set_chief_complaint("外傷")
        f.to_hospitals()
        h1, h2 = (h.id for h in f.view().hospitals[:2])
        f.toggle_hospital(h1)
        f.toggle_hospital(h2)
        f.send_selected()
        (case_id,) = f.sent_case_ids()

        def rows() -> dict[str, HospitalRow]:
            return {h.id: h for h in f.view().hospitals}

        f._outbox.direct.mark(case_id, "case", h1)  # type: ignore[attr-defined]
        f._outbox.direct.mark(case_id, "case", h2, "refused:gone")  # type: ignore[attr-defined]
        wait_until(lambda: rows()[h1].route == "direct", what="h1 direct")
        assert rows()[h2].route is None  # refused directly, and the platform is out
        assert not rows()[h1].on_platform
        platform.down = False
        wait_until(lambda: f.view().waiting_sealed == 0, timeout=20, what="reconciled")
        wait_until(lambda: rows()[h2].route == "platform", what="h2 via the platform")
        assert rows()[h1].route == "direct"
        assert rows()[h1].on_platform
        assert rows()[h2].on_platform
    finally:
        f.close()
        real.close()
