"""中止 / 不搬送 once the platform requires post-quantum envelopes (a real hub under
uvicorn; hospitals 0 and 1 hybrid, 2 not). A case went v1 to all three while v1 was
taken; then the operator switches ``KYUKYU_HUB_REQUIRE_PQ`` on and the crew ends the case
(現場死亡確認). The closure goes v2 to the two hybrid hospitals, each opens it; the clinic
is left out and the crew is told to phone it. A device still holding the older directory
seals the closure v1, is refused (422 ``envelope_version_refused``), fetches the signed
directory and seals it again once; a directory that brings nothing new ends it refused,
and the crew is told to phone (docs/envelope.md, "Policy")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from edge.flow import CaseFlow
from hub_server.models import Event
from sync.closure import open_closure
from sync.envelope import V1, V2, envelope_from_text
from sync.outbox import Outbox
from sync.reseal import VERSION_REFUSED
from sync.seal import OpeningKeys
from tests.edge._stale import Recorder, stale
from tests.edge._world import SCENE, World, make_flow, running_world, wait_until

CLINIC = "テスト駅前クリニック"  # HOSPITALS[2]: no hybrid key
HYBRID = ("テスト中央病院", "テスト救命救急センター")  # HOSPITALS[0], [1]
REASON = "現場死亡確認"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("pq-closures"), patients=1, hybrid=(0, 1)) as w:
        yield w


@pytest.fixture
def policy(world: World) -> Iterator[Any]:
    """``switch()`` stands for the operator restarting the platform with
    ``KYUKYU_HUB_REQUIRE_PQ=true`` (same database); off again after the test."""
    state = world.state

    def switch() -> None:
        state.settings = state.settings.with_(require_pq=True)

    yield switch
    state.settings = state.settings.with_(require_pq=False)


def _sent_to_all(world: World, data_dir: Path, platform: Recorder, directory: Any) -> CaseFlow:
    """A flow whose case went v1 to the three hospitals (the platform took v1 then)."""
    extra = {} if directory is None else {"directory": directory}
    f = make_flow(world, data_dir, platform=platform, **extra)
    f.start_without_card()
    f.set_chief_complaint("外傷")
    f.to_hospitals()
    for r in f.view().hospitals:
        f.toggle_hospital(r.id)
    f.send_selected()
    wait_until(lambda: f.view().waiting_sealed == 0, timeout=30, what="the case delivered")
    assert [p[1:] for p in platform.posts()] == [(str(V1), "201")]
    return f


def _ids(world: World, names: tuple[str, ...]) -> set[str]:
    return {h.id for h in world.hospitals if h.name in names}


def _opened(world: World, case_id: str) -> dict[str, str]:
    """Each hospital told of the closure on the platform, and the reason it opened."""
    with world.state.session() as s:
        rows = s.exec(
            select(Event.recipient, Event.payload).where(
                Event.case_id == case_id, Event.kind == "closure"
            )
        ).all()
    by_id = {h.id: h for h in world.hospitals}
    reasons = {}
    for recipient, payload in rows:
        h = by_id[recipient.removeprefix("hospital:")]
        closure = open_closure(
            envelope_from_text(json.loads(payload)["envelope"]),
            hospital_id=h.id,
            hospital_key=OpeningKeys(x25519=h.hpke, xwing=h.xwing),
            device_key_for=lambda _d: world.device_key.public_key(),
            expected_case_id=case_id,
        )
        reasons[h.name] = closure.reason
    return reasons


def _closure_state(data_dir: Path, case_id: str) -> str | None:
    with Outbox(data_dir / "outbox.sqlite3") as outbox:
        return outbox.intent_state(case_id, "closure")


def test_the_closure_goes_v2_to_the_hybrid_hospitals_and_the_crew_phones_the_clinic(
    world: World, policy: Any, tmp_path: Path
) -> None:
    platform = Recorder(world.platform())
    f = _sent_to_all(world, tmp_path, platform, None)
    try:
        (case_id,) = f.sent_case_ids()
        policy()
        assert f.refresh_directory()  # the signed list now says require_pq
        f.abort(REASON)
        notice = f.view().notice
        assert notice is not None
        assert (notice.code, notice.level) == ("aborted_phone", "warning")
        assert CLINIC in notice.text.ja
        assert "電話で中止を伝えてください" in notice.text.ja
        assert "他の病院へは中止を通知します" in notice.text.ja
        assert not any(name in notice.text.ja for name in HYBRID)
        wait_until(lambda: platform.closures(), timeout=30, what="the closure posted")
        ((version, outcome, *recipients),) = platform.closures()
        assert (version, outcome) == (str(V2), "201")
        assert set(recipients) == _ids(world, HYBRID)
        assert _opened(world, case_id) == dict.fromkeys(HYBRID, REASON)
        wait_until(lambda: f.view().waiting_sealed == 0, timeout=30, what="the outbox empty")
        assert f._closures == {}  # the platform has it: the reason is no longer kept
    finally:
        f.close()
    assert _closure_state(tmp_path, case_id) == "delivered"


def test_a_closure_sealed_from_the_older_list_is_sealed_again_once(
    world: World, policy: Any, tmp_path: Path
) -> None:
    platform = Recorder(world.platform())
    f = _sent_to_all(world, tmp_path, platform, world.platform().hospital_directory(*SCENE))
    try:
        (case_id,) = f.sent_case_ids()
        policy()  # the device is not told: its list still has no policy
        f.abort(REASON)
        notice = f.view().notice
        assert notice is not None
        assert notice.code == "aborted"  # nothing to phone as far as the device knows
        wait_until(
            lambda: any(c[1] == "201" for c in platform.closures()),
            timeout=30,
            what="the closure sealed again and posted",
        )
        (v1, refused, *all_three), (v2, created, *hybrid) = platform.closures()
        assert (v1, refused, v2, created) == (str(V1), VERSION_REFUSED, str(V2), "201")
        assert set(all_three) == _ids(world, (CLINIC, *HYBRID))
        assert set(hybrid) == _ids(world, HYBRID)
        assert platform.fetches == 1
        assert _opened(world, case_id) == dict.fromkeys(HYBRID, REASON)
        notice = f.view().notice
        assert notice is not None
        assert notice.code == "closure_resealed"
        assert CLINIC in notice.text.ja
        assert "電話で中止を伝えてください" in notice.text.ja
    finally:
        f.close()
    assert _closure_state(tmp_path, case_id) == "delivered"


def test_a_closure_that_cannot_be_sealed_again_is_refused_and_the_crew_told(
    world: World, policy: Any, tmp_path: Path
) -> None:
    """The directory fetched after the refusal comes from a replica without the policy
    yet: nothing new to seal from, so no second post; the crew phones."""
    client = world.platform()
    platform = Recorder(client, lagging=True)
    f = _sent_to_all(world, tmp_path, platform, stale(client.hospital_directory(*SCENE)))
    try:
        (case_id,) = f.sent_case_ids()
        policy()
        f.abort(REASON)
        wait_until(
            lambda: f.view().notice is not None and f.view().notice.code == "closure_refused",
            timeout=30,
            what="the refusal shown",
        )
        assert [c[:2] for c in platform.closures()] == [(str(V1), VERSION_REFUSED)]
        assert platform.fetches == 1
        notice = f.view().notice
        assert notice is not None
        assert notice.level == "error"
        assert notice.text.ja.startswith("中止の通知をプラットフォームが受け付けませんでした")
        assert all(name in notice.text.ja for name in (CLINIC, *HYBRID))
        assert "電話で中止を伝えてください" in notice.text.ja
        assert REASON not in notice.text.ja  # the patient was forgotten; the reason too
        assert f.view().waiting_sealed == 0
    finally:
        f.close()
    assert _closure_state(tmp_path, case_id) == f"refused:{VERSION_REFUSED}"
    assert _opened(world, case_id) == {}
