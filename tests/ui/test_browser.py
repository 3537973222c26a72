"""The browser kiosk: ``kyukyu edge --web`` (textual-serve, our own page) in Debian's
Chromium driven by Playwright, a full case clicked as a finger would at 800x480 and
1280x800, the terminal filling the viewport with whole cells and the title whole; a new
browser session after 事案終了 does not read the card left on the reader; a device with
bad settings still serves its screen. Screenshots go to the test's output directory."""

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
from edge.settings import load_device_settings
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

    def wait_stage(
        self, stage: str, timeout: float = 30, not_pid: int | None = None
    ) -> dict[str, Any]:
        """Wait for ``stage`` (idle, no dialog); ``not_pid``: in a session other than that one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state()
            if (
                st.get("stage") == stage
                and not st.get("busy")
                and not st.get("modal")
                and st.get("pid") != not_pid
                and _laid_out(st)
            ):
                time.sleep(0.3)  # drawn in the browser too
                st = self.state()
                if st.get("stage") != stage or not _laid_out(st):
                    continue  # rebuilt meanwhile (an answer, a delivery): wait for it again
                _title_whole(st)
                return st
            time.sleep(0.1)
        st = self.state()
        if st.get("stage") == stage:
            _title_whole(st)  # reached, but its screen never laid its title out
        raise AssertionError(f"stage {stage} not reached: {st}")

    def wait_button(self, bid: str, timeout: float = 30) -> None:
        wait_until(lambda: bid in self.state().get("buttons", {}), timeout, f"button {bid}")
        time.sleep(0.3)

    def tap(self, bid: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            self.wait_button(bid)
            st = self.state()
            if bid in st.get("buttons", {}):
                break
            # rebuilt during the settle wait (a stamp, a new set): wait for it again
            assert time.monotonic() < deadline, f"button {bid} kept disappearing"
        x, y, w, h = st["buttons"][bid]
        cols, rows = st["size"]
        box = self.page.locator(".xterm-screen").bounding_box()
        assert box is not None
        px = box["x"] + (x + w / 2) * box["width"] / cols
        py = box["y"] + (y + h / 2) * box["height"] / rows
        self.page.mouse.click(px, py)

    def tap_in_dialog(self, bid: str) -> None:
        """A button that closes a dialog. A tap that lands while the dialog is still being
        set up in the browser can be lost on a loaded machine: while the dialog stays open
        with the same button, it is tapped again (it can only hit that button)."""
        for _ in range(3):
            self.tap(bid)
            try:
                wait_until(lambda: not self.state().get("modal"), 10, f"{bid} closing the dialog")
                return
            except AssertionError:
                st = self.state()
                if not st.get("modal"):
                    return  # closed, late
                assert bid in st.get("buttons", {}), st
        raise AssertionError(f"{bid} never closed its dialog: {self.state()}")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"))


def test_kiosk_full_case_in_chromium(pcscd: Pcscd, world: World, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    requests: list[str] = []
    with (
        served_kiosk(world, tmp_path, pcscd.readers[0]) as (port, layout, config),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            for w, h in ((800, 480), (1280, 800)):
                layout.unlink(missing_ok=True)
                page = browser.new_page(viewport={"width": w, "height": h})
                page.on("request", lambda r: requests.append(r.url))
                page_url = f"http://127.0.0.1:{port}/"
                page.goto(page_url)
                k = Kiosk(page, layout, shots)
                _check_fit(k, w, h)
                front = _one_case(k, world, pcscd, f"{w}x{h}")
                session = int(k.state()["pid"])
                page.close()
                try:
                    _new_session_leaves_the_card(
                        browser,
                        page_url,
                        k,
                        session,
                        front,
                        load_device_settings(config).removal_marker_path,
                        (w, h),
                        world,
                        pcscd,
                    )
                finally:
                    front.stop()
        finally:
            browser.close()
    # The kiosk page loads nothing from the internet (no web fonts).
    outside = [u for u in requests if not u.startswith((f"http://127.0.0.1:{port}", "ws://"))]
    assert outside == []
    assert len(list(shots.glob("*.png"))) >= 8


@contextmanager
def served_kiosk(
    world: World, tmp_path: Path, reader_name: str
) -> Iterator[tuple[int, Path, Path]]:
    """``kyukyu edge --web`` for a device of ``world`` on a free port: (port, layout file,
    settings file); stopped on exit. Its log is ``tmp_path / "serve.log"``."""
    config = write_device_config(world, tmp_path / "device", reader_name=reader_name)
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
        yield port, layout, config
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

    with served_kiosk(world, tmp_path, pcscd.readers[0]) as (port, layout, _):
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


def _laid_out(st: dict[str, Any]) -> bool:
    """The flow's stage is written as it changes; its screen is laid out a moment later
    (longer on a loaded machine): a title of no width is a screen not laid out yet."""
    region = st.get("title", {}).get("region")
    return bool(region) and region[2] > 0


def _title_whole(st: dict[str, Any]) -> None:
    """Every screen's title: the top row, the full width, its text inside its padding."""
    cols, _rows = st["size"]
    x, y, w, h = st["title"]["region"]
    assert (x, y, w) == (0, 0, cols), st["title"]
    assert h >= 1
    assert 0 < st["title"]["text_cells"] <= w - 2, st["title"]


def _check_fit(k: Kiosk, width: int, height: int) -> None:
    """The terminal covers the viewport with whole cells (no strip, nothing cut), at least
    the panel's 100x30, and the title's text lies whole inside it."""
    st = k.wait_stage("standby")
    cols, rows = st["size"]
    assert cols >= 100
    assert rows >= 30
    viewport = {"x": 0, "y": 0, "width": width, "height": height}
    assert k.page.locator(".xterm-screen").bounding_box() == viewport
    canvases = k.page.locator("canvas").all()
    assert canvases
    for canvas in canvases:
        assert canvas.bounding_box() == viewport
    cell_w, cell_h = width / cols, height / rows
    assert cell_w == int(cell_w)  # whole pixels: the grid tiles the viewport exactly
    assert cell_h == int(cell_h)
    fit = str(k.page.evaluate("document.body.dataset.fit")).split()
    assert [int(fit[0]), int(fit[1])] == [cols, rows]  # the page's grid is the app's
    assert float(fit[2]) <= cell_h + 0.1  # a kanji's em box fits a cell: not cut at the top
    _title_whole(st)
    _x, y, _w, h = st["title"]["region"]
    assert (y + h) * cell_h <= height


def _new_session_leaves_the_card(
    browser: Any,
    url: str,
    k: Kiosk,
    finished: int,
    left: VpcdFrontEnd,
    marker: Path,
    size: tuple[int, int],
    world: World,
    pcscd: Pcscd,
) -> None:
    """A new browser session (a new process) after 事案終了, the finished case's card still
    on the reader: standby, no consent; taken away and a card tapped: that one is read."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    tag = f"{size[0]}x{size[1]}"
    try:
        page.goto(url)
        k2 = Kiosk(page, k.layout, k.shots)
        st = k2.wait_stage("standby", not_pid=finished)
        # The card watcher has had this long to take the card as a tap, had it done so.
        time.sleep(3.0)
        st = k2.state()
        assert st["stage"] == "standby", st
        assert st["pid"] != finished
        assert marker.exists()  # the finished case's card is still to be taken away
        k2.shot(f"{tag}-7-new-session")
        left.stop()  # the card is taken away ...
        wait_until(lambda: not marker.exists(), 30, "the new session saw the card leave")
        front = VpcdFrontEnd(VirtualCard(world.patient()), port=pcscd.ports[0])
        front.start()  # ... and a card tapped: now it is read
        try:
            k2.wait_stage("consent", not_pid=finished)
            k2.shot(f"{tag}-8-new-tap")
        finally:
            front.stop()
    finally:
        page.close()


def _one_case(k: Kiosk, world: World, pcscd: Pcscd, tag: str) -> VpcdFrontEnd:
    """A whole case; the card stays on the reader (the caller takes it away)."""
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
    except BaseException:
        front.stop()
        raise
    return front


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
            k.tap_in_dialog("phone-cancel")
            k.wait_stage("hospitals")
            with world.state.session() as s:
                assert s.get(Case, case_id).destination_hospital_id is None  # type: ignore[union-attr]
            k.tap("abort")
            wait_until(lambda: k.state().get("modal"), 30, "the 中止 dialog")
            k.wait_button("abort-0")
            k.shot("800x480-abort-dialog")
            k.tap_in_dialog("abort-0")  # 搬送拒否
            k.wait_stage("standby")

            def closed() -> bool:
                with world.state.session() as s:
                    kinds = s.exec(select(Event.kind).where(Event.case_id == case_id)).all()
                return "closure" in kinds

            wait_until(closed, 30, "the closure at the platform")
            page.close()
        finally:
            browser.close()


def test_a_device_with_bad_settings_still_serves_its_screen(tmp_path: Path) -> None:
    """Under the kiosk unit a bad setting must not leave the browser blank: ``kyukyu edge
    --web`` serves its page (200) and the screen in Chromium says 設定に誤り and names it."""
    import httpx
    from playwright.sync_api import sync_playwright

    from tests._process import cli_env

    config = tmp_path / "edge.env"
    config.write_text(
        f"KYUKYU_EDGE_DATA_DIR={tmp_path / 'data'}\nKYUKYU_EDGE_BASE_LAT='north'\n",
        encoding="utf-8",
    )
    port = _free_port()
    command = [sys.executable, "-m", "kyukyu", "edge", "--web", "--config", str(config)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**cli_env(tmp_path), "LANG": "C.UTF-8"},
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    received: list[bytes] = []
    try:
        wait_until(lambda: _port_open(port), 30, "textual-serve listening")
        page_response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page_response.status_code == 200
        assert "マイナ救急" in page_response.text
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 800, "height": 480})

                def frames(ws: Any) -> None:
                    ws.on(
                        "framereceived",
                        lambda f: received.append(f if isinstance(f, bytes) else f.encode()),
                    )

                page.on("websocket", frames)
                page.goto(f"http://127.0.0.1:{port}/")
                # What the page's terminal was sent to draw: the setup screen's words.
                # (Playwright delivers the frames while it runs: wait in the page.)
                deadline = time.monotonic() + 60
                while "設定に誤り" not in b"".join(received).decode("utf-8", "ignore"):
                    assert time.monotonic() < deadline, "the setup screen was not drawn"
                    page.wait_for_timeout(100)
                drawn = b"".join(received).decode("utf-8", "ignore")
                assert "KYUKYU_EDGE_BASE_LAT" in drawn
                assert "技術担当者に連絡してください" in drawn
                assert page.locator(".xterm-screen").bounding_box() == {
                    "x": 0,
                    "y": 0,
                    "width": 800,
                    "height": 480,
                }
                assert server.poll() is None  # the kiosk's server keeps running
                page.screenshot(path=str(tmp_path / "bad-settings-800x480.png"))
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)
    assert "Traceback" not in (tmp_path / "serve.log").read_text(encoding="utf-8")
