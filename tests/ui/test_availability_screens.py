"""応需状況 on the paramedic's screen, end to end against the real platform: a hospital
sets 脳神経外科 不可 (its signed route, as its dashboard does); the hospitals screen of a
麻痺・しびれ patient shows it and puts that hospital last, in Debian's Chromium (the kiosk)
and in a real terminal (tmux). Both wait for the change, with no timing assertion. The
region rule at the same platform: a device of another region does not get it, unless its
region lists the hospital's as a neighbour. (Expiry to 不明 on an injected clock:
tests/edge/test_availability_flow.py.)"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.edge._world import World, WorldHospital, wait_until, write_device_config
from tests.hospital._world import cli
from tests.ui._terminal import Tmux
from tests.ui.test_browser import CHROMIUM_ARGS, Kiosk, served_kiosk

NEAREST = "テスト駅前クリニック"


def _hospital(world: World, name: str) -> WorldHospital:
    return next(h for h in world.hospitals if h.name == name)


@pytest.fixture
def neurosurgery_closed(world: World) -> Iterator[WorldHospital]:
    """Yields the nearest hospital; clears its status afterwards (the world is shared)."""
    h = _hospital(world, NEAREST)
    yield h
    with world.hospital_client(h) as c:
        c.set_availability([{"code": "neurosurgery", "status": "clear"}])


def _close(world: World, h: WorldHospital) -> None:
    later = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    with world.hospital_client(h) as c:
        c.set_availability([{"code": "neurosurgery", "status": "unavailable", "expires_at": later}])


def test_kiosk_shows_and_orders_by_availability(
    world: World, tmp_path: Path, neurosurgery_closed: WorldHospital
) -> None:
    from playwright.sync_api import sync_playwright

    from edge.flow import CHIEF_COMPLAINTS

    h = neurosurgery_closed
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with (
        served_kiosk(world, tmp_path, "kyukyu-test-no-such-reader") as (port, layout, _),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/")
            k = Kiosk(page, layout, shots)
            k.wait_stage("standby")
            k.tap("primary")  # カードなしで開始
            k.wait_stage("vitals")
            k.tap(f"cc-{[c.ja for c in CHIEF_COMPLAINTS].index('麻痺・しびれ')}")
            time.sleep(0.3)  # as the other kiosk tests after a tap that redraws (no assertion)
            k.tap("primary")
            k.wait_stage("hospitals")
            assert k.state()["hospitals"][0] == h.id  # nearest first while nothing is known
            _close(world, h)

            def closed_and_last() -> bool:
                st = k.state()
                if not st.get("hospitals") or st["hospitals"][-1] != h.id:
                    return False
                last = f"avail-{len(st['hospitals']) - 1}"
                return "st-neurosurgery-unavailable" in st.get("states", {}).get(last, [])

            wait_until(closed_and_last, 30, "脳神経外科 不可 on the last row")
            k.shot("hospitals-neurosurgery-closed")
            page.close()
        finally:
            browser.close()


def test_terminal_shows_and_orders_by_availability(
    world: World, tmp_path: Path, neurosurgery_closed: WorldHospital
) -> None:
    h = neurosurgery_closed
    config = write_device_config(
        world, tmp_path / "device", reader_name="kyukyu-test-no-such-reader"
    )
    term = Tmux(tmp_path, size=(120, 40))
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    try:
        term.start([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)], env)
        term.wait_for("カードをタッチしてください")
        term.click_text("カードなしで開始")
        term.wait_for("主訴・バイタル")
        term.click_text("麻痺・しびれ")
        term.click_text("病院選択へ")
        term.wait_for("応需状況: リアルタイム")
        _close(world, h)
        screen = term.wait_for("脳神経外科 不可")
        names = [x.name for x in world.hospitals]

        def order(text: str) -> list[str]:
            lines = text.splitlines()
            at = {n: next((i for i, ln in enumerate(lines) if n in ln), -1) for n in names}
            return sorted(names, key=lambda n: at[n])

        # The row moves after its label changed: wait for the order, then check it.
        screen = wait_until(
            lambda: t if order(t := term.screen())[-1] == NEAREST else None,
            30,
            "the closed hospital last",
        )
        assert "脳神経外科 不可" in screen
    finally:
        term.kill()


def test_other_regions_see_it_only_as_neighbours(world: World) -> None:
    """The region rule at the same platform the screens used (regions are the operator's:
    ``kyukyu hub region set``; the device's catch-up is what its screen reads)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hub_server.core.db import utcnow
    from hub_server.core.security import new_token, sha256_hex
    from hub_server.crud import availability as regions
    from hub_server.models import EnrollmentToken
    from sync.client import PlatformClient

    h = _hospital(world, "テスト中央病院")
    db = ("--db", str(world.state.settings.db_url))
    assert cli("hub", "region", "set", "R-A", "--name", "A", *db)["neighbours"] == []
    assert cli("hub", "region", "set", "R-B", "--name", "B", *db)["neighbours"] == []
    with world.state.session() as s:
        regions.assign_region(s, kind="hospital", ident=h.id, region="R-A")
        token = new_token()
        s.add(
            EnrollmentToken(
                token_hash=sha256_hex(token),
                fire_department="B消防",
                created_by="test",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(minutes=5),
                region="R-B",
            )
        )
        s.commit()
    try:
        _close(world, h)
        with PlatformClient(
            world.url, key=Ed25519PrivateKey.generate(), hub_public_key=world.hub_public_key
        ) as b:
            b.enroll(token, "B救急")
            seen = [d["hospital_id"] for d in b.availability(0)["hospitals"]]
            assert h.id not in seen
            assert h.id not in [x.id for x in b.hospital_directory(35.68, 139.76)]
            cli("hub", "region", "set", "R-B", "--name", "B", "--neighbour", "R-A", *db)
            seen = [d["hospital_id"] for d in b.availability(0)["hospitals"]]
            assert h.id in seen
            assert h.id in [x.id for x in b.hospital_directory(35.68, 139.76)]
        with world.platform() as own:  # the world's device has no region: sees everything
            assert h.id in [d["hospital_id"] for d in own.availability(0)["hospitals"]]
    finally:
        with world.state.session() as s:
            regions.assign_region(s, kind="hospital", ident=h.id, region=None)
            s.commit()
        with world.hospital_client(h) as c:
            c.set_availability([{"code": "neurosurgery", "status": "clear"}])
