"""The browser kiosk: ``kyukyu edge --web`` (textual-serve, our own page) in Debian's
Chromium driven by Playwright, a full case clicked as a finger would at 800x480 and
1280x800. Screenshots go to the test's output directory."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from edge.card_sim import VirtualCard, VpcdFrontEnd
from tests.components import Pcscd
from tests.edge._world import World, newest_case_id, wait_until, write_device_config

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kiosk:
    """One browser page on the served app; clicks land in the middle of a button's cells."""

    def __init__(self, page: Any, layout: Path, shots: Path) -> None:
        self.page = page
        self.layout = layout
        self.shots = shots

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.layout.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def wait_stage(self, stage: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state()
            if st.get("stage") == stage and not st.get("busy") and not st.get("modal"):
                time.sleep(0.3)  # drawn in the browser too
                return self.state()
            time.sleep(0.1)
        raise AssertionError(f"stage {stage} not reached: {self.state()}")

    def wait_button(self, bid: str, timeout: float = 30) -> None:
        wait_until(lambda: bid in self.state().get("buttons", {}), timeout, f"button {bid}")
        time.sleep(0.3)

    def tap(self, bid: str) -> None:
        self.wait_button(bid)
        st = self.state()
        x, y, w, h = st["buttons"][bid]
        cols, rows = st["size"]
        box = self.page.locator(".xterm-screen").bounding_box()
        assert box is not None
        px = box["x"] + (x + w / 2) * box["width"] / cols
        py = box["y"] + (y + h / 2) * box["height"] / rows
        self.page.mouse.click(px, py)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"))


def test_kiosk_full_case_in_chromium(pcscd: Pcscd, world: World, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    data = tmp_path / "device"
    config = write_device_config(world, data, reader_name=pcscd.readers[0])
    layout = tmp_path / "layout.json"
    port = _free_port()
    env = {**os.environ, "KYUKYU_EDGE_LAYOUT_FILE": str(layout), "LANG": "C.UTF-8"}
    command = [sys.executable, "-m", "kyukyu", "edge", "--web", "--config", str(config)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    requests: list[str] = []
    try:
        wait_until(lambda: _port_open(port), 30, "textual-serve listening")
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                for w, h in ((800, 480), (1280, 800)):
                    layout.unlink(missing_ok=True)
                    page = browser.new_page(viewport={"width": w, "height": h})
                    page.on("request", lambda r: requests.append(r.url))
                    page.goto(f"http://127.0.0.1:{port}/")
                    _one_case(Kiosk(page, layout, shots), world, pcscd, f"{w}x{h}")
                    page.close()
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)
    # The kiosk page loads nothing from the internet (no web fonts).
    outside = [u for u in requests if not u.startswith((f"http://127.0.0.1:{port}", "ws://"))]
    assert outside == []
    assert len(list(shots.glob("*.png"))) >= 8


@contextmanager
def _served_kiosk(world: World, pcscd: Pcscd, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``kyukyu edge --web`` on a free port: (port, layout file); stopped on exit."""
    config = write_device_config(world, tmp_path / "device", reader_name=pcscd.readers[0])
    layout = tmp_path / "layout.json"
    port = _free_port()
    env = {**os.environ, "KYUKYU_EDGE_LAYOUT_FILE": str(layout), "LANG": "C.UTF-8"}
    command = [sys.executable, "-m", "kyukyu", "edge", "--web", "--config", str(config)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _port_open(port), 30, "textual-serve listening")
        yield port, layout
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)


_ESCAPE = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def test_collation_b_error_in_chromium(pcscd: Pcscd, world: World, tmp_path: Path) -> None:
    """A wrong 照合番号B at 800x480: the page receives and draws 照合番号Bが違います with the
    tries left (xterm.js draws on a canvas, so the text is read from the terminal stream the
    page renders; the screenshot is for a person)."""
    from playwright.sync_api import sync_playwright

    image = world.patient()
    good = image.collation_b
    wrong = good[:-4] + ("0000" if good[-4:] != "0000" else "1111")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    stream = bytearray()

    def on_socket(ws: Any) -> None:
        ws.on("framereceived", lambda p: stream.extend(p if isinstance(p, bytes) else b""))

    pages: list[Any] = []

    def drawn() -> str:
        if pages:
            pages[0].wait_for_timeout(20)  # the sync API delivers frames inside its calls
        text = _ESCAPE.sub("", bytes(stream).decode("utf-8", errors="replace"))
        (tmp_path / "drawn.txt").write_text(text)
        return text

    with _served_kiosk(world, pcscd, tmp_path) as (port, layout):
        front = VpcdFrontEnd(VirtualCard(image), port=pcscd.ports[0])
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 800, "height": 480})
                page.on("websocket", on_socket)
                pages.append(page)
                page.goto(f"http://127.0.0.1:{port}/")
                k = Kiosk(page, layout, shots)
                k.wait_stage("standby")
                front.start()  # the tap
                k.wait_stage("consent")
                k.tap("primary")  # 口頭同意あり
                k.wait_stage("identity")
                k.tap("identity-collation_b")
                k.wait_stage("collation_b")
                k.wait_button("era-convert")
                wait_until(lambda: "和暦6桁" in drawn(), 30, "the era hint drawn")
                for d in wrong:
                    k.tap(f"key-{d}")
                wait_until(lambda: wrong in drawn(), 30, "the keyed digits drawn")
                k.tap("primary")
                wait_until(
                    lambda: "照合番号Bが違います。残り9回です。" in drawn(), 30, "the error drawn"
                )
                k.wait_stage("collation_b")
                k.shot("800x480-collation-b-wrong")
            finally:
                pages.clear()
                browser.close()
                front.stop()
    assert image.tries["text_collation_b"] == 9
    assert image.tries["text_pin"] == 3
    assert "暗証番号が違います" not in drawn()
    assert (shots / "800x480-collation-b-wrong.png").stat().st_size > 0


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _one_case(k: Kiosk, world: World, pcscd: Pcscd, tag: str) -> None:
    k.wait_stage("standby")
    k.shot(f"{tag}-1-standby")
    front = VpcdFrontEnd(VirtualCard(world.patient()), port=pcscd.ports[0])
    front.start()  # the tap
    try:
        k.wait_stage("consent")
        k.shot(f"{tag}-2-consent")
        k.tap("primary")  # 口頭同意あり
        k.wait_stage("identity")
        k.tap("primary")  # 顔写真で本人確認済み
        k.wait_stage("summary")
        k.shot(f"{tag}-3-summary")
        k.tap("primary")
        k.wait_stage("vitals")
        k.tap("cc-1")  # 胸痛
        k.tap("vital-pulse")
        for key in ("1", "2", "0"):
            k.tap(f"key-{key}")
        k.tap("pad-ok")
        k.wait_stage("vitals")
        k.shot(f"{tag}-4-vitals")
        k.tap("primary")
        k.wait_stage("hospitals")
        before = newest_case_id(world)
        k.tap("h-0")
        time.sleep(0.3)
        k.tap("primary")  # send to the selected
        case_id = wait_until(
            lambda: (c := newest_case_id(world)) != before and c, what="the case at the hub"
        )
        nearest = next(h for h in world.hospitals if h.name == "テスト駅前クリニック")
        with world.hospital_client(nearest) as c:
            c.answer(case_id, "accept")
        k.wait_button("dest-0")
        time.sleep(1.0)
        k.shot(f"{tag}-5-answers")
        k.tap("dest-0")
        k.wait_stage("confirmed")
        k.tap("primary")  # 事案終了
        k.wait_stage("standby")
        k.shot(f"{tag}-6-done")
    finally:
        front.stop()


pytestmark = pytest.mark.slow


def test_kiosk_declined_refused_and_abort_in_chromium(world: World, tmp_path: Path) -> None:
    """One row of the intents matrix in the browser at 800x480, no card (a reader that is
    not there): the hospital declines (満床): its row shows the reason and offers only the
    phone step (no 搬送先に決定); the crew backs out of it, then ends the case (中止,
    搬送拒否) and the platform relays the closure."""
    from playwright.sync_api import sync_playwright
    from sqlmodel import select

    from edge.flow import REFUSAL_REASONS
    from hub_server.models import Case, Event

    data = tmp_path / "device"
    config = write_device_config(world, data, reader_name="kyukyu-test-no-such-reader")
    layout = tmp_path / "layout.json"
    port = _free_port()
    env = {**os.environ, "KYUKYU_EDGE_LAYOUT_FILE": str(layout), "LANG": "C.UTF-8"}
    command = [sys.executable, "-m", "kyukyu", "edge", "--web", "--config", str(config)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        wait_until(lambda: _port_open(port), 30, "textual-serve listening")
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 800, "height": 480})
                page.goto(f"http://127.0.0.1:{port}/")
                k = Kiosk(page, layout, shots)
                k.wait_stage("standby")
                k.tap("primary")  # カードなしで開始
                k.wait_stage("vitals")
                k.tap("primary")
                k.wait_stage("hospitals")
                before = newest_case_id(world)
                k.tap("h-0")
                time.sleep(0.3)
                k.tap("primary")
                case_id = wait_until(
                    lambda: (c := newest_case_id(world)) != before and c, what="the case"
                )
                nearest = next(h for h in world.hospitals if h.name == "テスト駅前クリニック")
                with world.hospital_client(nearest) as c:
                    c.answer(case_id, "decline", "満床")
                reason = f"reason-{REFUSAL_REASONS.index('満床')}"
                wait_until(
                    lambda: reason in k.state().get("states", {}).get("answer-0", []),
                    30,
                    "受入不可（満床） on the row",
                )
                assert "decline" in k.state()["states"]["answer-0"]
                time.sleep(0.5)
                k.shot("800x480-declined")
                assert "dest-0" not in k.state()["buttons"]  # not offered as destination
                k.tap("phone-0")
                wait_until(lambda: k.state().get("modal"), 30, "the phone dialog")
                k.wait_button("phone-cancel")
                k.shot("800x480-phone-dialog")
                k.tap("phone-cancel")
                k.wait_stage("hospitals")
                with world.state.session() as s:
                    assert s.get(Case, case_id).destination_hospital_id is None  # type: ignore[union-attr]
                k.tap("abort")
                wait_until(lambda: k.state().get("modal"), 30, "the 中止 dialog")
                k.wait_button("abort-0")
                k.shot("800x480-abort-dialog")
                k.tap("abort-0")  # 搬送拒否
                k.wait_stage("standby")

                def closed() -> bool:
                    with world.state.session() as s:
                        kinds = s.exec(select(Event.kind).where(Event.case_id == case_id)).all()
                    return "closure" in kinds

                wait_until(closed, 30, "the closure at the platform")
                page.close()
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)
