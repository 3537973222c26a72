"""A device sealing from a stale directory meets a platform that requires post-quantum
envelopes (a real hub under uvicorn with ``KYUKYU_HUB_REQUIRE_PQ``; hospitals 0 and 1
hybrid, 2 not): the platform refuses the v1 case (422 ``envelope_version_refused``), the
device fetches the signed directory again and, while the case is open, seals it again
(v2) under a new Idempotency-Key; the hospital without a hybrid key is left out and
reads 要電話. A case no longer open is recorded refused and the crew is told; a platform
that refuses again gets no second re-seal from the same directory (docs/envelope.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.flow import CaseFlow
from hub_server.models import Case
from sync import SealedCase
from sync.envelope import V1, V2
from sync.outbox import Outbox
from sync.reseal import VERSION_REFUSED
from sync.seal import OpeningKeys, open_case
from tests.edge._stale import Recorder, stale
from tests.edge._world import SCENE, World, make_flow, running_world, wait_until

CLINIC = "テスト駅前クリニック"  # HOSPITALS[2]: no hybrid key
HYBRID = ("テスト中央病院", "テスト救命救急センター")  # HOSPITALS[0], [1]
REFUSED = f"refused:{VERSION_REFUSED}"


@pytest.fixture(scope="module")
def pq_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(
        tmp_path_factory.mktemp("reseal-world"), patients=1, hybrid=(0, 1), require_pq=True
    ) as w:
        yield w


def _flow(world: World, data_dir: Path, platform: Recorder, directory: Any) -> CaseFlow:
    f = make_flow(world, data_dir, platform=platform, directory=directory)
    f.subscribe(platform.watch)
    return f


def _send(f: CaseFlow, names: tuple[str, ...]) -> str:
    f.start_without_card()
    f.set_chief_complaint("外傷")
    f.to_hospitals()
    for r in f.view().hospitals:
        if r.name in names:
            f.toggle_hospital(r.id)
    f.send_selected()
    (case_id,) = f.sent_case_ids()
    return case_id


def _stored(world: World, case_id: str) -> bytes:
    with world.state.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert case.envelope is not None
        return bytes(case.envelope)


def _opened_by(world: World, case_id: str) -> tuple[int, set[str]]:
    """The stored envelope's version and the names of the hospitals that opened it."""
    envelope = _stored(world, case_id)
    sealed = SealedCase.from_bytes(envelope)
    by_id = {h.id: h for h in world.hospitals}
    names = set()
    for hid in sealed.recipient_ids:
        h = by_id[hid]
        opened = open_case(
            envelope,
            hospital_id=hid,
            hospital_key=OpeningKeys(x25519=h.hpke, xwing=h.xwing),
            device_key_for=lambda _d: world.device_key.public_key(),
            expected_case_id=case_id,
        )
        assert opened.bundle()["resourceType"] == "Bundle"
        names.add(h.name)
    return sealed.version, names


def _row(f: CaseFlow, name: str) -> Any:
    return next(r for r in f.view().hospitals if r.name == name)


def test_a_stale_directory_is_refreshed_and_the_case_sealed_again_v2(
    pq_world: World, tmp_path: Path
) -> None:
    client = pq_world.platform()
    platform = Recorder(client)
    f = _flow(pq_world, tmp_path, platform, stale(client.hospital_directory(*SCENE)))
    try:
        case_id = _send(f, HYBRID)
        wait_until(
            lambda: all(_row(f, n).state() == "sent" for n in HYBRID), timeout=30, what="201"
        )
        (v1_key, v1, refused), (v2_key, v2, created) = platform.posts()
        assert (v1, refused) == (str(V1), VERSION_REFUSED)
        assert (v2, created) == (str(V2), "201")
        assert v1_key != v2_key  # a new Idempotency-Key for the new envelope
        assert platform.fetches == 1
        assert _opened_by(pq_world, case_id) == (V2, set(HYBRID))
        # 送信済み only after the platform's 201 of the sealed-again case.
        first_sent = next(
            i for i, e in enumerate(platform.events) if e[0] == "view" and "=sent" in "".join(e)
        )
        created_at = platform.events.index(("post", v2_key, str(V2), "201"))
        assert created_at < first_sent
        assert f.view().waiting_sealed == 0
        assert f.view().notice is not None
        assert f.view().notice.code == "sent"
    finally:
        f.close()


def test_a_hospital_without_a_hybrid_key_is_left_out_and_reads_phone_only(
    pq_world: World, tmp_path: Path
) -> None:
    client = pq_world.platform()
    platform = Recorder(client)
    f = _flow(pq_world, tmp_path, platform, stale(client.hospital_directory(*SCENE)))
    try:
        assert not _row(f, CLINIC).phone_only  # the stale list knows no policy
        case_id = _send(f, (CLINIC, *HYBRID))
        wait_until(lambda: f.view().waiting_sealed == 0, timeout=30, what="delivered")
        assert [p[1:] for p in platform.posts()] == [
            (str(V1), VERSION_REFUSED),
            (str(V2), "201"),
        ]
        assert _opened_by(pq_world, case_id) == (V2, set(HYBRID))
        clinic = _row(f, CLINIC)
        assert (clinic.phone_only, clinic.sent) == (True, False)  # 要電話, not a recipient
        notice = f.view().notice
        assert notice is not None
        assert notice.code == "resealed"
        assert CLINIC in notice.text.ja
        assert "電話" in notice.text.ja
        assert all(_row(f, n).state() == "sent" for n in HYBRID)
    finally:
        f.close()


def _refused_before_restart(world: World, data_dir: Path) -> tuple[str, list[str]]:
    """A case sealed v1 from a stale directory and queued while the network is down;
    then the device stops (the case is in its outbox only, sealed)."""
    client = world.platform()
    down = Recorder(client, down=True)
    f = _flow(world, data_dir, down, stale(client.hospital_directory(*SCENE)))
    try:
        case_id = _send(f, HYBRID)
        recipients = sorted(r.id for r in f.view().hospitals if r.sent)
    finally:
        f.close()
    return case_id, recipients


def test_a_case_no_longer_open_is_recorded_refused_and_the_crew_told(
    pq_world: World, tmp_path: Path
) -> None:
    case_id, _ = _refused_before_restart(pq_world, tmp_path)
    # The device again (a new process would be the same: nothing of the case in memory).
    client = pq_world.platform()
    platform = Recorder(client)
    f = _flow(pq_world, tmp_path, platform, client.hospital_directory(*SCENE))
    try:
        wait_until(
            lambda: f.view().notice is not None and f.view().notice.code == "case_refused",
            timeout=30,
            what="the refusal shown",
        )
        notice = f.view().notice
        assert notice is not None
        assert notice.level == "error"
        assert notice.text.ja.startswith("以前の事案をプラットフォームが受け付けませんでした")
        assert all(name in notice.text.ja for name in HYBRID)
        assert "電話で病院に連絡してください" in notice.text.ja
        assert [p[1:] for p in platform.posts()] == [(str(V1), VERSION_REFUSED)]
        assert platform.fetches == 0  # nothing to seal again: no directory asked for it
        assert f.view().waiting_sealed == 0  # nothing left to retry
    finally:
        f.close()
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        assert outbox.pending_count() == 0
        assert outbox.intent_state(case_id, "case") == REFUSED
        status = outbox.status(case_id)
        assert status is not None
        assert (status.delivered_at, status.last_error) == (None, VERSION_REFUSED)


def test_a_forgotten_case_is_not_sealed_again(pq_world: World, tmp_path: Path) -> None:
    client = pq_world.platform()
    platform = Recorder(client, down=True)
    f = _flow(pq_world, tmp_path, platform, stale(client.hospital_directory(*SCENE)))
    try:
        case_id = _send(f, HYBRID)
        f.finish()  # the crew ended the case: the device forgot the patient
        platform.down = False  # the network is back: the answer stream's return wakes the queue
        wait_until(
            lambda: f.view().notice is not None and f.view().notice.code == "case_refused",
            timeout=30,
            what="the refusal shown",
        )
        assert f.view().case_open is False
        assert [p[1:] for p in platform.posts()] == [(str(V1), VERSION_REFUSED)]
        assert platform.fetches == 0
    finally:
        f.close()
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        assert outbox.intent_state(case_id, "case") == REFUSED
        assert outbox.pending_count() == 0


def test_a_platform_refusing_again_gets_no_second_reseal_from_the_same_directory(
    pq_world: World, tmp_path: Path
) -> None:
    client = pq_world.platform()
    # The device's copy knows two hospitals; the replica it fetches from has all three,
    # still without the policy or hybrid keys: sealing again from it gives v1 again.
    platform = Recorder(client, lagging=True)
    older = stale(client.hospital_directory(*SCENE), HYBRID)
    f = _flow(pq_world, tmp_path, platform, older)
    try:
        case_id = _send(f, HYBRID)
        wait_until(
            lambda: f.view().notice is not None and f.view().notice.code == "case_refused",
            timeout=30,
            what="the refusal shown",
        )
        (first, v1a, r1), (second, v1b, r2) = platform.posts()
        assert (v1a, r1, v1b, r2) == (str(V1), VERSION_REFUSED, str(V1), VERSION_REFUSED)
        assert first != second  # the one re-seal, under its own key
        assert platform.fetches == 2  # after each refusal; the second brought nothing new
        assert all(_row(f, n).state() == "refused" for n in HYBRID)
        notice = f.view().notice
        assert notice is not None
        assert notice.text.ja.startswith("事案をプラットフォームが受け付けませんでした")
        assert f.view().waiting_sealed == 0
        assert not any(r.state() == "sent" for r in f.view().hospitals)
    finally:
        f.close()
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        assert outbox.intent_state(case_id, "case") == REFUSED
        assert outbox.pending_count() == 0
