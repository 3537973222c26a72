"""応需状況 on the device, against the real platform: a hospital's 不可 pushed over the
device's stream reorders the hospitals for a 麻痺・しびれ patient; the status expires to
不明 (never 可) on the device's injected clock; a new device catches up from the
platform, and one whose stream is down shows its last snapshot, marked offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.flow import Stage
from sync.availability import AvailabilityBook
from tests.edge._world import World, make_flow, wait_until


def _set(world: World, name: str, items: list[dict[str, object]]) -> int:
    h = next(h for h in world.hospitals if h.name == name)
    with world.hospital_client(h) as c:
        return int(c.set_availability(items)["version"])


def _row(view: object, name: str) -> object:
    return next(r for r in view.hospitals if r.name == name)  # type: ignore[attr-defined]


def test_pushed_status_orders_and_expires_on_the_device(world: World, tmp_path: Path) -> None:
    now = [datetime.now(UTC)]
    book = AvailabilityBook(tmp_path / "availability.json")
    flow = make_flow(world, tmp_path, availability=book, clock=lambda: now[0])
    try:
        wait_until(lambda: flow.view().availability_live, 30, "the stream up and caught up")
        flow.start_without_card()
        flow.set_chief_complaint("麻痺・しびれ")
        flow.to_hospitals()
        view = flow.view()
        assert view.stage is Stage.HOSPITALS
        assert view.availability_needs == ("neurosurgery", "ct", "mri")
        nearest = view.hospitals[0].name  # by distance while nothing is known
        in_4h = (now[0] + timedelta(hours=4)).isoformat()
        version = _set(
            world,
            nearest,
            [
                {
                    "code": "neurosurgery",
                    "status": "unavailable",
                    "note": "手術中",
                    "expires_at": in_4h,
                }
            ],
        )
        # Pushed, not asked for: the row says 不可 and goes last.
        wait_until(lambda: book.version >= version, 30, "the push")
        view = flow.view()
        row = _row(view, nearest)
        assert dict(row.availability)["neurosurgery"] == "unavailable"  # type: ignore[attr-defined]
        assert row.fit == 3  # type: ignore[attr-defined]
        assert view.hospitals[-1].name == nearest
        # Four hours and a second later on the device's clock: 不明, never 可.
        now[0] += timedelta(hours=4, seconds=1)
        row = _row(flow.view(), nearest)
        assert dict(row.availability)["neurosurgery"] == "unknown"  # type: ignore[attr-defined]
        assert row.fit == 2  # type: ignore[attr-defined]
    finally:
        flow.close()
        _set(world, nearest, [{"code": "neurosurgery", "status": "clear"}])  # shared world
    # The snapshot stays on disk (no patient data in it): a new device process reads it,
    # offline until its stream is up.
    again = AvailabilityBook(tmp_path / "availability.json")
    assert again.version >= version
    assert again.live is False
    held = again.get(next(h.id for h in world.hospitals if h.name == nearest))
    assert held is not None
    assert held.items["neurosurgery"].note == "手術中"
    assert "麻痺" not in (tmp_path / "availability.json").read_text(encoding="utf-8")
