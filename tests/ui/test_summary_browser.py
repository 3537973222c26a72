"""The summary at a glance in the browser kiosk (``kyukyu edge --web``, Debian's Chromium
through Playwright) at 800x480 and 1280x800, for a typical patient (5 conditions, 10
drugs): the consent / identity head stays where it is when the crew pages down, and at
800x480 the summary is at most two screens (a third PageDown changes nothing).

Screenshots go to the test's tmp dir and, for a reviewer, to ``$KYUKYU_SCREENSHOT_DIR``
when it is set.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from edge.card_sim import VirtualCard, VpcdFrontEnd
from tests.components import Pcscd
from tests.edge._world import World
from tests.ui._patients import typical_patient
from tests.ui.test_browser import CHROMIUM_ARGS, Kiosk, served_kiosk

pytestmark = pytest.mark.slow

HEAD_ROW = 1  # under the title: 同意 … 本人確認 …
BOTTOM_ROWS = 5  # action bar (3 rows and a margin) and the status bar

# Distinct colours of a PNG, counted by the browser itself (no imaging package needed).
_COLOURS = """async (b64) => {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return seen.size;
}"""


class Rows:
    """Screenshots of whole terminal rows of the kiosk page."""

    def __init__(self, k: Kiosk) -> None:
        self.page = k.page
        box = k.page.locator(".xterm-screen").bounding_box()
        assert box is not None
        self.box = box
        self.cols, self.rows = k.state()["size"]
        self.cell = box["height"] / self.rows

    def shot(self, first: int, last: int) -> bytes:
        clip = {
            "x": self.box["x"],
            "y": self.box["y"] + first * self.cell,
            "width": self.box["width"],
            "height": (last - first + 1) * self.cell,
        }
        return bytes(self.page.screenshot(clip=clip))

    def colours(self, png: bytes) -> int:
        return int(self.page.evaluate(_COLOURS, base64.b64encode(png).decode()))


def _settled(take: Any, deadline_s: float = 60.0) -> bytes:
    """The picture once three shots 0.3 s apart agree (the redraw after a key is done);
    the deadline only bounds a hang."""
    deadline = time.monotonic() + deadline_s
    shots = [take()]
    while time.monotonic() < deadline:
        time.sleep(0.3)
        shots = [*shots[-2:], take()]
        if len(shots) == 3 and shots[0] == shots[1] == shots[2]:
            return bytes(shots[-1])
    raise AssertionError("the screen never settled")


def _copy_out(shots: Path) -> None:
    out = os.environ.get("KYUKYU_SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copy(png, Path(out) / png.name)


@pytest.mark.parametrize("size", [(800, 480), (1280, 800)], ids=["800x480", "1280x800"])
def test_summary_head_pinned_and_two_screens(
    pcscd: Pcscd, world: World, tmp_path: Path, size: tuple[int, int]
) -> None:
    from playwright.sync_api import sync_playwright

    w, h = size
    shots = tmp_path / "screenshots"
    shots.mkdir()
    front = VpcdFrontEnd(VirtualCard(typical_patient(world)), port=pcscd.ports[0])
    try:
        with (
            served_kiosk(world, tmp_path, pcscd.readers[0]) as (port, layout, _),
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(f"http://127.0.0.1:{port}/")
                k = Kiosk(page, layout, shots)
                k.wait_stage("standby")
                front.start()  # the tap
                k.wait_stage("consent")
                k.tap("primary")  # 口頭同意あり
                k.wait_stage("identity")
                k.tap("primary")  # 顔写真で本人確認済み
                k.wait_stage("summary")
                _pages_and_head(k, f"summary-{w}x{h}", at_most_two=(w, h) == (800, 480))
            finally:
                browser.close()
    finally:
        front.stop()
        _copy_out(shots)


def _pages_and_head(k: Kiosk, tag: str, *, at_most_two: bool) -> None:
    r = Rows(k)
    body = (HEAD_ROW + 3, r.rows - BOTTOM_ROWS - 1)  # rows inside the scrolling sections
    head = _settled(lambda: r.shot(HEAD_ROW, HEAD_ROW))
    assert r.colours(head) > 2, "the consent / identity head is blank"
    k.shot(f"{tag}-1-top")
    # Focus the sections (a click on their text, left of the action bar), then page down.
    box = r.box
    k.page.mouse.click(box["x"] + 4 * box["width"] / r.cols, box["y"] + (body[0] + 0.5) * r.cell)
    pages = [_settled(lambda: r.shot(*body))]
    for _ in range(3):
        k.page.keyboard.press("PageDown")
        now = _settled(lambda: r.shot(*body))
        if now == pages[-1]:
            break
        pages.append(now)
        k.shot(f"{tag}-{len(pages)}-page{len(pages)}")
    # However far the crew scrolled, the head is the same picture in the same place. (If
    # the head itself was redrawn meanwhile, it is compared with the head at the top now.)
    scrolled = _settled(lambda: r.shot(HEAD_ROW, HEAD_ROW))
    if scrolled != head:
        for _ in range(4):
            k.page.keyboard.press("PageUp")
        _settled(lambda: r.shot(*body))
        head = _settled(lambda: r.shot(HEAD_ROW, HEAD_ROW))
    assert scrolled == head
    assert k.state()["stage"] == "summary"  # the click or the keys did not leave the screen
    if at_most_two:
        assert len(pages) <= 2, f"{len(pages)} screens at {r.cols}x{r.rows} cells"
