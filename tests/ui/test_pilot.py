"""Every path of the edge screen driven by clicks (Textual Pilot), against the virtual card
and a real hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.card_sim import VirtualCard
from edge.flow import Stage
from edge.ui import EdgeApp
from tests.edge._world import PIN, TapReader, World, make_flow
from tests.ui._pilot import PANEL, screen_text, wait_stage, wait_text

pytestmark = pytest.mark.anyio


_open: list[EdgeApp] = []


@pytest.fixture(autouse=True)
def _close_flows() -> Iterator[None]:
    yield
    while _open:
        _open.pop().flow.close()


def app_for(world: World, tmp_path: Path, reader: TapReader | None = None) -> EdgeApp:
    flow = make_flow(world, tmp_path, cards=reader or TapReader())
    app = EdgeApp(flow, idle_timeout_s=300)
    _open.append(app)
    return app


async def test_conscious_card_case_by_clicks(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    image = world.patient()
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        assert "カードをタッチしてください" in screen_text(app)
        reader.tap(VirtualCard(image))
        await wait_stage(pilot, app, Stage.CONSENT)
        touches = 0
        await pilot.click("#primary")  # 口頭同意あり
        touches += 1
        await wait_stage(pilot, app, Stage.IDENTITY)
        await pilot.click("#primary")  # 顔写真で本人確認済み
        touches += 1
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert touches <= 2
        text = screen_text(app)
        assert "アレルギー・副作用" in text
        assert text.index("アレルギー") < text.index("傷病名") < text.index("薬剤情報")
        assert "口頭同意あり" in text
        assert "顔写真で確認" in text

        await pilot.click("#primary")  # 主訴・バイタルへ
        await wait_stage(pilot, app, Stage.VITALS)
        await pilot.click("#cc-1")  # 胸痛
        await pilot.click("#vital-systolic")
        for key in ("3", "0", "0"):
            await pilot.click(f"#key-{key}")
        await wait_text(pilot, app, "範囲外")
        await pilot.click("#pad-ok")
        await pilot.pause()
        await wait_text(pilot, app, "⚠ 血圧(上) 300")  # flagged, not refused
        await pilot.click("#vital-jcs")
        await pilot.click("#jcs-10")
        await wait_text(pilot, app, "意識 JCS II-10")
        assert app.flow.view().chief_complaint == "胸痛"

        await pilot.click("#primary")  # 病院選択へ
        await wait_stage(pilot, app, Stage.HOSPITALS)
        await pilot.click("#h-0")
        await pilot.click("#h-1")
        await wait_text(pilot, app, "選択した2病院へ一斉送信")
        await pilot.click("#primary")
        await wait_text(pilot, app, "送信済み")
        (case_id,) = app.flow.sent_case_ids()
        await wait_until_async(pilot, lambda: app.flow.view().waiting_sealed == 0)
        rows = app.flow.view().hospitals
        by_id = {h.id: h for h in world.hospitals}
        with world.hospital_client(by_id[rows[0].id]) as c:
            c.answer(case_id, "decline", "満床")
        with world.hospital_client(by_id[rows[1].id]) as c:
            c.answer(case_id, "accept")
        await wait_text(pilot, app, "受入可")
        await wait_text(pilot, app, "受入不可")
        await pilot.click("#dest-1")
        await wait_stage(pilot, app, Stage.CONFIRMED)
        assert rows[1].name in screen_text(app)
        await pilot.click("#primary")  # 事案終了
        await wait_stage(pilot, app, Stage.STANDBY)
        text = screen_text(app)
        assert "消去しました" in text
        for secret in (rows[1].name, "胸痛", "300", "アレルギー"):
            assert secret not in text


async def test_unconscious_is_one_touch(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#consent-unconscious")
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert "意識障害等により同意取得困難" in screen_text(app)


async def test_refused_then_no_summary(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#consent-refused")
        await wait_stage(pilot, app, Stage.VITALS)
        await wait_text(pilot, app, "閲覧しません")
        await pilot.click("#show-summary")
        await wait_stage(pilot, app, Stage.SUMMARY)
        text = screen_text(app)
        assert "同意なし" in text
        assert "アレルギー" not in text


async def test_pin_path_with_wrong_pin_and_last_try(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.IDENTITY)
        await pilot.click("#identity-pin")
        await wait_stage(pilot, app, Stage.PIN)
        for pin in ("9999", "9998"):
            for d in pin:
                await pilot.click(f"#key-{d}")
            assert "●●●●" in screen_text(app)  # masked
            await pilot.click("#primary")
            await wait_stage(pilot, app, Stage.PIN)
        await wait_text(pilot, app, "残り1回")
        for d in PIN:
            await pilot.click(f"#key-{d}")
        await pilot.click("#primary")
        await wait_text(pilot, app, "最後の1回: 確定")
        for d in PIN:
            await pilot.click(f"#key-{d}")
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert "暗証番号＋カード署名" in screen_text(app)


async def test_collation_b_shows_verified_name(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    image = world.patient()
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(image))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.IDENTITY)
        await pilot.click("#identity-collation_b")
        await wait_stage(pilot, app, Stage.COLLATION_B)
        for d in image.collation_b:
            await pilot.click(f"#key-{d}")
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert image.holder.name in screen_text(app)


async def test_collation_b_wrong_number_and_western_birth_date(
    world: World, tmp_path: Path
) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    image = world.patient()
    good = image.collation_b
    wrong = good[:-4] + ("0000" if good[-4:] != "0000" else "1111")
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(image))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.IDENTITY)
        await pilot.click("#identity-collation_b")
        await wait_stage(pilot, app, Stage.COLLATION_B)
        text = screen_text(app)
        assert "和暦6桁" in text
        assert "昭和55年3月1日→550301" in text  # the hint's example
        for d in wrong:
            await pilot.click(f"#key-{d}")
        await pilot.click("#primary")
        await wait_text(pilot, app, "照合番号Bが違います。残り9回です。")
        assert "暗証番号" not in screen_text(app)
        await wait_text(pilot, app, "（残り9回）")

        # The Western birth date, keyed as 8 digits, converted on the device.
        western = image.holder.birth_date.strftime("%Y%m%d")
        for d in western:
            await pilot.click(f"#key-{d}")
        await pilot.click("#era-convert")
        era = good[:6]
        await wait_text(pilot, app, f"{era}を使う")
        assert f"生年月日の6桁は {era} です" in screen_text(app)
        await pilot.click("#primary")  # the crew confirms: the pad holds the era digits
        await wait_text(pilot, app, "西暦から和暦に変換")
        await pilot.pause()
        assert str(app.screen.query_one("#pad-display").render()) == era
        for d in good[6:]:
            await pilot.click(f"#key-{d}")
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert image.holder.name in screen_text(app)


async def test_card_removed_then_retap(world: World, tmp_path: Path) -> None:
    from edge.card_sim import Quirks

    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient(), Quirks(remove_after_apdus=3)))
        await wait_stage(pilot, app, Stage.CARD_PROBLEM)
        assert "もう一度カードをタッチ" in screen_text(app)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)


async def test_no_card_case_and_card_later(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#primary")  # カードなしで開始
        await wait_stage(pilot, app, Stage.VITALS)
        await pilot.click("#cc-10")  # 外傷
        await pilot.click("#take-card")
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#consent-unconscious")
        await wait_stage(pilot, app, Stage.SUMMARY)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.VITALS)
        assert "✓ 外傷" in screen_text(app)


async def test_language_and_theme_toggle(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#lang")
        await wait_text(pilot, app, "Tap the card or phone")
        await pilot.click("#theme")
        await pilot.pause()
        assert app.theme == "kyukyu-night"
        await pilot.click("#lang")
        await wait_text(pilot, app, "カードをタッチしてください")


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def test_idle_timeout_forgets_the_patient(world: World, tmp_path: Path) -> None:
    reader = TapReader()
    clock = FakeClock()
    flow = make_flow(world, tmp_path, cards=reader)
    app = EdgeApp(flow, idle_timeout_s=300, clock=clock)
    _open.append(app)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#consent-unconscious")
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert "アレルギー" in screen_text(app)

        # Just short of the limit: the check runs and the patient stays.
        clock.advance(299)
        assert not app.forget_if_idle()
        assert app.flow.view().case_open
        # Any input starts the wait again: the old limit passes, the patient stays.
        await pilot.press("x")
        await pilot.pause()
        clock.advance(2)
        assert not app.forget_if_idle()
        await pilot.pause()
        assert "アレルギー" in screen_text(app)
        assert app.flow.view().case_open

        # Past the limit: the app's own 1 s timer forgets the patient (the wait only
        # bounds a hang; the time that counts is the fake clock's).
        app.standby_shown.clear()
        clock.advance(300)
        await wait_stage(pilot, app, Stage.STANDBY)
        assert app.standby_shown.is_set()
        assert "アレルギー" not in screen_text(app)
        assert not app.flow.view().case_open


async def test_all_decline_then_resend(world: World, tmp_path: Path) -> None:
    app = app_for(world, tmp_path)
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.VITALS)
        await pilot.click("#primary")
        await wait_stage(pilot, app, Stage.HOSPITALS)
        # A tap while an intent still runs is ignored (app.busy): under load the screen can
        # show the next step before the intent's thread has ended. Tap when it is idle.
        await wait_until_async(pilot, lambda: not app.busy, 30)
        await pilot.click("#h-0")
        await wait_until_async(pilot, lambda: app.flow.view().hospitals[0].selected, 30)
        await pilot.click("#primary")
        await wait_text(pilot, app, "送信済み")
        (case_id,) = app.flow.sent_case_ids()
        await wait_until_async(pilot, lambda: app.flow.view().waiting_sealed == 0)
        row = app.flow.view().hospitals[0]
        with world.hospital_client({h.id: h for h in world.hospitals}[row.id]) as c:
            c.answer(case_id, "decline", "専門外")
        await wait_text(pilot, app, "再送信")
        await wait_until_async(pilot, lambda: not app.busy, 30)
        await pilot.click("#h-2")
        await wait_until_async(pilot, lambda: app.flow.view().hospitals[2].selected, 30)
        await pilot.click("#primary")
        await wait_until_async(pilot, lambda: len(app.flow.sent_case_ids()) == 2, 30)


async def wait_until_async(pilot: object, pred: object, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("timed out")


async def test_slow_summary_lookup_shows_fetching_screen(world: World, tmp_path: Path) -> None:
    """A look-up that takes longer than ``LOOKUP_SCREEN_AFTER_S`` shows 取得中 until the
    summary is there (never the summary before it is)."""
    import threading

    platform = world.platform()
    answer_now = threading.Event()
    asked = threading.Event()
    real_lookup = platform.lookup_summary

    def slow_lookup(request: object) -> object:
        asked.set()
        answer_now.wait(60)  # bounds a hang only: released below once 取得中 shows
        return real_lookup(request)

    platform.lookup_summary = slow_lookup
    reader = TapReader()
    app = EdgeApp(make_flow(world, tmp_path, cards=reader, platform=platform), idle_timeout_s=300)
    _open.append(app)
    try:
        async with app.run_test(size=PANEL) as pilot:
            await wait_stage(pilot, app, Stage.STANDBY)
            reader.tap(VirtualCard(world.patient()))
            await wait_stage(pilot, app, Stage.CONSENT)
            await pilot.click("#primary")  # 口頭同意あり
            await wait_stage(pilot, app, Stage.IDENTITY)
            await pilot.click("#primary")  # 顔写真で本人確認済み
            await wait_text(pilot, app, "救急用サマリーを取得中")
            assert asked.is_set()
            assert app.flow.view().stage is Stage.LOOKING_UP
            assert "アレルギー・副作用" not in screen_text(app)
            answer_now.set()
            await wait_stage(pilot, app, Stage.SUMMARY)
            assert "アレルギー・副作用" in screen_text(app)
    finally:
        answer_now.set()


async def test_quick_summary_lookup_builds_no_fetching_screen(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look-up answered before ``LOOKUP_SCREEN_AFTER_S`` goes from the face check
    straight to the summary: no 取得中 screen is built only to be replaced."""
    import edge.ui.app

    monkeypatch.setattr(edge.ui.app, "LOOKUP_SCREEN_AFTER_S", 60.0)  # any look-up is quick
    reader = TapReader()
    app = app_for(world, tmp_path, reader)
    shown: list[Stage] = []
    switch = app._switch

    def spy(view: object) -> None:
        shown.append(view.stage)  # type: ignore[attr-defined]
        switch(view)  # type: ignore[arg-type]

    app._switch = spy  # type: ignore[method-assign]
    async with app.run_test(size=PANEL) as pilot:
        await wait_stage(pilot, app, Stage.STANDBY)
        reader.tap(VirtualCard(world.patient()))
        await wait_stage(pilot, app, Stage.CONSENT)
        await pilot.click("#primary")  # 口頭同意あり
        await wait_stage(pilot, app, Stage.IDENTITY)
        await pilot.click("#primary")  # 顔写真で本人確認済み
        await wait_stage(pilot, app, Stage.SUMMARY)
        assert "アレルギー・副作用" in screen_text(app)
    assert Stage.LOOKING_UP not in shown
    assert shown[-2:] == [Stage.IDENTITY, Stage.SUMMARY]
