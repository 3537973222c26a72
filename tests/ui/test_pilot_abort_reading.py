"""中止 while the card is being read (Textual Pilot, the real flow and hub): the case
ends with nothing of the half-read card kept, the hospital is told nothing (nothing was
sent), and the reader takes the next card."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.card_sim import CardImage, VirtualCard
from edge.flow import Stage
from edge.ui import EdgeApp
from tests.edge._world import TapReader, World, make_flow, newest_case_id
from tests.ui._pilot import PANEL, screen_text, wait_stage, wait_text

pytestmark = pytest.mark.anyio

_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


class HeldCard(VirtualCard):
    """A virtual card that stops answering at its ``hold_at``-th APDU until released
    (a card held still in the field while the device reads it)."""

    def __init__(self, image: CardImage, hold_at: int) -> None:
        super().__init__(image)
        self.hold_at = hold_at
        self.apdus = 0
        self.held = threading.Event()
        self.release = threading.Event()

    def process(self, apdu: bytes) -> bytes:
        self.apdus += 1
        if self.apdus == self.hold_at:
            self.held.set()
            assert self.release.wait(30), "the test never released the card"
        return super().process(apdu)


async def test_abort_while_the_card_is_mid_read(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = EdgeApp(make_flow(world, tmp_path, cards=reader), idle_timeout_s=300)
    _open.append(app)
    image = world.patient()
    before = newest_case_id(world)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        # Held at the APDU the token type step follows: released after 中止, that step must
        # not show on the next case.
        card = HeldCard(image, hold_at=3)
        reader.tap(card)
        assert await asyncio.to_thread(card.held.wait, 30)
        await wait_stage(pilot, app, Stage.READING)
        assert app.flow.view().case_open
        await pilot.click("#abort")  # the reading screen offers 中止 too
        await wait_text(pilot, app, "事案を中止しますか？")
        await pilot.click("#abort-4")  # 誤報・取消
        await wait_text(pilot, app, "何も送信していません")
        card.release.set()  # the card answers again: the read finds its case gone
        await wait_stage(pilot, app, Stage.STANDBY)
        await asyncio.to_thread(reader.waiting.wait, 30)  # the watcher waits for a tap
        await pilot.pause()

        v = app.flow.view()
        assert not v.case_open
        assert v.progress == ()  # no step of the half-read card on the next case
        assert v.token_type is None
        assert v.patient_label is None
        assert v.waiting_sealed == 0  # nothing in the outbox
        assert app.flow.sent_case_ids() == ()
        text = screen_text(app)
        assert image.holder.name not in text
        assert "カードをタッチしてください" in text
        assert reader.removals == 1  # the ended case's card had to leave the reader first

        # The reader takes the next case's card, read to the end.
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        assert app.flow.view().progress  # its own steps
    assert newest_case_id(world) == before  # the hospital was told nothing
