"""The device's sealing over a mixed fleet (a real hub; two hospitals hybrid, one not):
a case that includes the hospital without a hybrid key is v1, one to the hybrid ones only
is v2, each hospital opens what it got. Under ``KYUKYU_HUB_REQUIRE_PQ`` the signed
directory says so, the hospital without a hybrid key is 要電話 (phone only: not
selectable, never a recipient), the case goes to the others sealed v2 and each opens it;
the same on the screen (Textual Pilot)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.flow import Stage
from edge.ui import EdgeApp
from hub_server.models import Case
from sync import SealedCase
from sync.envelope import V1, V2
from sync.seal import OpeningKeys, open_case
from tests.edge._stale import Recorder, stale
from tests.edge._world import SCENE, TapReader, World, make_flow, running_world, wait_until
from tests.ui._pilot import PANEL, screen_text, wait_stage, wait_text

# HOSPITALS nearest first from the scene: index 2 (テスト駅前クリニック, no hybrid key), 0, 1.
PHONE_ONLY = "テスト駅前クリニック"


@pytest.fixture(scope="module")
def pq_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(
        tmp_path_factory.mktemp("pq-world"), patients=1, hybrid=(0, 1), require_pq=True
    ) as w:
        yield w


@pytest.fixture(scope="module")
def mixed_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("mixed-world"), patients=1, hybrid=(0, 1)) as w:
        yield w


def _opens_at_each(world: World, case_id: str) -> int:
    """The stored envelope's version, after every recipient opened it with its keys."""
    envelope = _stored(world, case_id)
    sealed = SealedCase.from_bytes(envelope)
    by_id = {h.id: h for h in world.hospitals}
    for hid in sealed.recipient_ids:
        h = by_id[hid]
        opened = open_case(
            envelope,
            hospital_id=hid,
            hospital_key=OpeningKeys(x25519=h.hpke, xwing=h.xwing),
            device_key_for=lambda _d: world.device_key.public_key(),
        )
        assert opened.case_id == case_id
    return sealed.version


def test_a_mixed_fleet_v1_with_the_old_hospital_v2_without(
    mixed_world: World, tmp_path: Path
) -> None:
    versions = []
    for n, pick in enumerate(([0, 1, 2], [1, 2])):  # rows: the clinic (no hybrid key) first
        f = make_flow(mixed_world, tmp_path / str(n))
        try:
            assert f.refresh_directory()
            f.start_without_card()
            f.set_chief_complaint("外傷")
            f.to_hospitals()
            rows = f.view().hospitals
            assert rows[0].name == PHONE_ONLY
            assert not any(r.phone_only for r in rows)  # no policy: every row is a choice
            for i in pick:
                f.toggle_hospital(rows[i].id)
            f.send_selected()
            (case_id,) = f.sent_case_ids()
            wait_until(lambda f=f: f.view().waiting_sealed == 0, timeout=30, what="delivered")
            versions.append(_opens_at_each(mixed_world, case_id))
        finally:
            f.close()
    assert versions == [V1, V2]


def _stored(world: World, case_id: str) -> bytes:
    with world.state.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert case.envelope is not None
        return bytes(case.envelope)


def test_the_flow_leaves_the_hospital_without_a_hybrid_key_out(
    pq_world: World, tmp_path: Path
) -> None:
    f = make_flow(pq_world, tmp_path)
    try:
        assert f.refresh_directory()
        f.start_without_card()
        f.set_chief_complaint("外傷")
        f.to_hospitals()
        rows = f.view().hospitals
        assert (rows[0].name, rows[0].phone_only) == (PHONE_ONLY, True)
        assert [r.phone_only for r in rows[1:]] == [False, False]
        for r in rows:
            f.toggle_hospital(r.id)
        rows = f.view().hospitals
        assert [r.selected for r in rows] == [False, True, True]  # 要電話 is never chosen
        f.send_selected()
        (case_id,) = f.sent_case_ids()
        wait_until(lambda: f.view().waiting_sealed == 0, timeout=30, what="delivered")
        sent = {r.id for r in f.view().hospitals if r.sent}
        assert sent == {r.id for r in rows[1:]}
        assert set(SealedCase.from_bytes(_stored(pq_world, case_id)).recipient_ids) == sent
        assert _opens_at_each(pq_world, case_id) == V2
        assert f.view().hospitals[0].phone_only  # still 要電話 after the others got it
    finally:
        f.close()


@pytest.mark.anyio
async def test_the_hospitals_screen_shows_phone_only(pq_world: World, tmp_path: Path) -> None:
    app = EdgeApp(make_flow(pq_world, tmp_path, cards=TapReader()), idle_timeout_s=300)
    try:
        assert app.flow.refresh_directory()
        async with app.run_test(size=PANEL) as pilot:
            await wait_stage(pilot, app, Stage.STANDBY)
            await pilot.click("#primary")  # カードなしで開始
            await wait_stage(pilot, app, Stage.VITALS)
            await pilot.click("#primary")
            await wait_stage(pilot, app, Stage.HOSPITALS)
            await wait_text(pilot, app, "要電話")
            assert PHONE_ONLY in screen_text(app)
            assert app.screen.query_one("#h-0").disabled
            assert not app.screen.query_one("#h-1").disabled
            await pilot.click("#h-0")
            await pilot.pause()
            assert not app.flow.view().hospitals[0].selected
    finally:
        app.flow.close()


@pytest.mark.anyio
async def test_the_screen_says_a_refused_case_did_not_reach_the_hospitals(
    pq_world: World, tmp_path: Path
) -> None:
    """Sealed v1 from an older directory; the platform refuses it, and the directory the
    device fetches again (a replica without the policy yet) gives nothing new to seal
    from: the rows read 送信できませんでした（要電話） and the notice says to phone."""
    client = pq_world.platform()
    hybrid = tuple(h.name for h in pq_world.hospitals if h.xwing is not None)
    platform = Recorder(client, lagging=True)
    older = stale(client.hospital_directory(*SCENE), hybrid)
    app = EdgeApp(
        make_flow(pq_world, tmp_path, cards=TapReader(), platform=platform, directory=older),
        idle_timeout_s=300,
    )
    try:
        async with app.run_test(size=PANEL) as pilot:
            await wait_stage(pilot, app, Stage.STANDBY)
            await pilot.click("#primary")  # カードなしで開始
            await wait_stage(pilot, app, Stage.VITALS)
            await pilot.click("#primary")
            await wait_stage(pilot, app, Stage.HOSPITALS)
            await pilot.click("#h-0")
            await pilot.click("#h-1")
            await pilot.pause()
            await pilot.click("#primary")  # 選択した2病院へ一斉送信
            await wait_text(pilot, app, "送信できませんでした（要電話）")
            text = screen_text(app)
            assert text.count("送信できませんでした（要電話）") == 2
            assert "事案をプラットフォームが受け付けませんでした（暗号方式の更新が必要）" in text
            assert "電話で病院に連絡してください" in text
            assert "送信済み" not in text
    finally:
        app.flow.close()


@pytest.mark.anyio
async def test_the_screen_says_to_phone_the_hospital_a_closure_cannot_reach(
    mixed_world: World, tmp_path: Path
) -> None:
    """A case sent v1 to all three while the platform took v1; then the platform requires
    post-quantum envelopes (the operator's restart, the same database) and the crew ends
    the case: the clinic cannot be told by the platform, and the screen says to phone it."""
    state = mixed_world.state
    app = EdgeApp(make_flow(mixed_world, tmp_path, cards=TapReader()), idle_timeout_s=300)
    try:
        assert app.flow.refresh_directory()
        async with app.run_test(size=PANEL) as pilot:
            await wait_stage(pilot, app, Stage.STANDBY)
            await pilot.click("#primary")  # カードなしで開始
            await wait_stage(pilot, app, Stage.VITALS)
            await pilot.click("#primary")
            await wait_stage(pilot, app, Stage.HOSPITALS)
            for i in range(3):
                await pilot.click(f"#h-{i}")
                await pilot.pause()
            await pilot.click("#primary")  # 選択した3病院へ一斉送信
            await wait_text(pilot, app, "送信済み")
            state.settings = state.settings.with_(require_pq=True)
            assert app.flow.refresh_directory()
            await pilot.click("#abort")
            await wait_text(pilot, app, "事案を中止しますか？")
            await pilot.click("#abort-1")  # 現場死亡確認
            await wait_stage(pilot, app, Stage.STANDBY)
            await wait_text(pilot, app, "電話で中止を伝えてください")
            text = screen_text(app)
            assert f"{PHONE_ONLY}は新しい暗号方式に未対応のため、中止を通知できません" in text
            assert "他の病院へは中止を通知します" in text
    finally:
        state.settings = state.settings.with_(require_pq=False)
        app.flow.close()
