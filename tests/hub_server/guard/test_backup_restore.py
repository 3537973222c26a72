"""Issue 23: backup and restore (``kyukyu hub backup`` / ``restore``), and a restore told
apart from a truncation by ``kyukyu hub audit verify --checkpoint``. SQLite and PostgreSQL.

A backup is taken, more cases come, a checkpoint pins them; the database is then taken
back to the backup's rows twice: once by hand (a truncation: TAMPERED), once by
``kyukyu hub restore`` (a signed marker: "restored to row N at T"). After the restore new
cases are numbered past every event a hospital may already have seen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from hub_server.core.audit import DEFAULT_EVENT_GAP
from hub_server.core.security import HubKey
from hub_server.services.device_roster import RestoreGaps
from kyukyu.cli import main as kyukyu
from sync import SnapshotRollback
from sync.roster import DeviceRoster
from tests.hub_server._support import Hub, Signer

pytestmark = pytest.mark.anyio


def _drop_connections(hub: Hub) -> None:
    """The in-process hub lets go of its pooled connections (as a stopped hub would)."""
    hub.state.engine.dispose()
    if hub.state.autocommit is not None:
        hub.state.autocommit.dispose()


def _truncate_to(hub: Hub, seq: int) -> None:
    with hub.state.engine.begin() as conn:
        digest = conn.execute(text("SELECT hash FROM audit WHERE seq = :s"), {"s": seq}).scalar()
        conn.execute(text("DELETE FROM audit WHERE seq > :s"), {"s": seq})
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": seq, "h": digest})


def _head(hub: Hub) -> int:
    with hub.state.engine.connect() as conn:
        return int(conn.execute(text("SELECT seq FROM audit_head")).scalar_one())


async def test_a_restore_is_told_apart_from_a_truncation(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "hub.key"
    HubKey.load_or_create(key)
    db = hub.state.settings.db_url
    cps = tmp_path / "checkpoints.jsonl"
    checkpoint = ["hub", "audit", "checkpoint", "--db", db, "--hub-key", str(key)]
    checkpoint += ["--out", str(cps)]
    verify = ["hub", "audit", "verify", "--db", db, "--checkpoint", str(cps)]
    verify += ["--hub-key", str(key)]
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    for _ in range(2):
        assert (await hub.post_case(device, [hid])).status_code == 201
    assert kyukyu(checkpoint) == 0
    backup = tmp_path / "hub.backup"
    assert kyukyu(["hub", "backup", "--db", db, "--out", str(backup)]) == 0
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    at_backup = _head(hub)
    for _ in range(3):  # cases after the backup, pinned by a checkpoint
        assert (await hub.post_case(device, [hid])).status_code == 201
    assert kyukyu(checkpoint) == 0
    assert _head(hub) > at_backup
    capsys.readouterr()
    assert kyukyu(verify) == 0

    # Back to the backup's rows by hand: a truncation, whatever the intent.
    _truncate_to(hub, at_backup)
    assert kyukyu(verify) == 1
    assert "AUDIT TRAIL TAMPERED" in capsys.readouterr().err

    # The restore itself: the same rows, and a marker signed by the hub key.
    _drop_connections(hub)
    restore = ["hub", "restore", str(backup), "--db", db, "--hub-key", str(key)]
    assert kyukyu([*restore, "--checkpoint-out", str(cps)]) == 0
    _drop_connections(hub)
    marker = json.loads(cps.read_text().splitlines()[-1])
    assert marker["restore"]["seq"] == at_backup
    capsys.readouterr()
    assert kyukyu(verify) == 0
    out = capsys.readouterr().out
    assert "audit trail intact" in out
    assert f"restored to row {at_backup} at {marker['restore']['at']}" in out

    # New cases go on, numbered past anything the hospital saw before the restore.
    assert (await hub.post_case(device, [hid])).status_code == 201
    with hub.state.engine.connect() as conn:
        seqs = (
            conn.execute(
                text("SELECT seq FROM events WHERE recipient = :r ORDER BY seq"),
                {"r": f"hospital:{hid}"},
            )
            .scalars()
            .all()
        )
    assert seqs[:2] == [1, 2]
    assert seqs[-1] == 2 + 1_000_000 + 1
    assert kyukyu(checkpoint) == 0
    assert kyukyu(verify) == 0

    # A truncation after the restore is still found; so is one that removes the marker.
    _truncate_to(hub, _head(hub) - 1)
    assert kyukyu(verify) == 1
    _truncate_to(hub, at_backup)
    capsys.readouterr()
    assert kyukyu(verify) == 1
    assert "TAMPERED" in capsys.readouterr().err


async def test_a_marker_not_signed_by_the_hub_key_excuses_nothing(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, forger = tmp_path / "hub.key", tmp_path / "other.key"
    HubKey.load_or_create(key)
    HubKey.load_or_create(forger)
    db = hub.state.settings.db_url
    cps = tmp_path / "checkpoints.jsonl"
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    assert (await hub.post_case(device, [hid])).status_code == 201
    backup = tmp_path / "hub.backup"
    assert kyukyu(["hub", "backup", "--db", db, "--out", str(backup)]) == 0
    assert (await hub.post_case(device, [hid])).status_code == 201
    cp = ["hub", "audit", "checkpoint", "--db", db, "--hub-key", str(key), "--out", str(cps)]
    assert kyukyu(cp) == 0
    _drop_connections(hub)
    # Restored with another key: the marker is there, but not the hub's.
    restore = ["hub", "restore", str(backup), "--db", db, "--hub-key", str(forger)]
    assert kyukyu([*restore, "--checkpoint-out", str(cps)]) == 0
    _drop_connections(hub)
    capsys.readouterr()
    verify = ["hub", "audit", "verify", "--db", db, "--checkpoint", str(cps)]
    assert kyukyu([*verify, "--hub-key", str(key)]) == 1
    assert "TAMPERED" in capsys.readouterr().err


def test_a_failed_backup_or_restore_is_a_typed_error_and_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub_server.services.backups import BackupFailed, backup_database, restore_database

    with pytest.raises(BackupFailed, match="SQLite file, not memory"):
        backup_database("sqlite://", tmp_path / "b.db")
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a dump")
    key = HubKey.generate()
    absent = "postgresql+psycopg://127.0.0.1:5432/kyukyu_no_such_db"
    with pytest.raises(BackupFailed, match="pg_restore failed"):
        restore_database(absent, junk, key, event_gap=1)
    with pytest.raises(BackupFailed, match="no backup at"):
        restore_database("sqlite:///x.db", tmp_path / "absent", key, event_gap=1)
    assert kyukyu(["hub", "backup", "--db", "sqlite://", "--out", str(tmp_path / "c.db")]) == 1
    err = capsys.readouterr().err
    assert "SQLite file, not memory" in err
    assert "バックアップまたは復元に失敗しました" in err
    assert not (tmp_path / "c.db").exists()


async def _roster(hub: Hub, hospital: Signer) -> dict[str, Any]:
    r = await hub.call(hospital, "GET", "/v1/devices/roster")
    assert r.status_code == 200, r.text
    document: dict[str, Any] = r.json()
    return document


async def test_the_roster_version_rises_across_a_restore_and_hospitals_take_it(
    hub: Hub, tmp_path: Path
) -> None:
    """The roster's version counts the restore's event gap: a hospital holding a roster
    signed after the backup takes the first one after the restore, and a revocation made
    after the restore reaches it (before: refused as a rollback, the device still trusted
    on the direct route)."""
    key = tmp_path / "hub.key"
    HubKey.load_or_create(key)
    db = hub.state.settings.db_url
    kept, later = await hub.enroll_device(), await hub.enroll_device()
    _, hospital = await hub.register_hospital()
    backup = tmp_path / "hub.backup"
    assert kyukyu(["hub", "backup", "--db", db, "--out", str(backup)]) == 0
    lost = await hub.enroll_device()  # after the backup: gone with the restore
    revoke = f"/v1/devices/{_device_id(kept)}/revoke"
    assert (await hub.call(hub.operator, "POST", revoke, {})).status_code == 200
    held = DeviceRoster(tmp_path / "device-roster.json", hub.state.hub_key.public_key)
    pre = await _roster(hub, hospital)
    before = held.accept(pre)
    assert before == 4  # three enrolled, one revoked
    assert held(_device_id(kept)) is None
    assert held(_device_id(lost)) is not None

    _drop_connections(hub)
    restore = ["hub", "restore", str(backup), "--db", db, "--hub-key", str(key)]
    assert kyukyu(restore) == 0  # default --event-gap
    _drop_connections(hub)
    after = await _roster(hub, hospital)
    assert after["roster"]["version"] == 2 + DEFAULT_EVENT_GAP > before
    assert held.accept(after) == 2 + DEFAULT_EVENT_GAP  # not a rollback
    assert held.vouched(_device_id(lost)) is None  # the hub forgot it: enrol it again
    # The restore lost the revocation made after the backup (docs/hub.md): the roster
    # lists the device unrevoked, but a hospital that held the revocation keeps it.
    assert not next(d for d in after["roster"]["devices"] if d["id"] == _device_id(kept))["revoked"]
    assert held(_device_id(kept)) is None

    # Revocations after the restore reach the hospital with its next roster.
    for device in (kept, later):
        path = f"/v1/devices/{_device_id(device)}/revoke"
        assert (await hub.call(hub.operator, "POST", path, {})).status_code == 200
    assert held.accept(await _roster(hub, hospital)) == 4 + DEFAULT_EVENT_GAP
    for device in (kept, later):
        vouched = held.vouched(_device_id(device))
        assert vouched is not None
        assert vouched.revoked
        assert held(_device_id(device)) is None  # refused on the direct route
    # The pre-restore roster (a replay) is older than the one held: refused, kept so.
    with pytest.raises(SnapshotRollback):
        held.accept(pre)
    again = DeviceRoster(held.path, hub.state.hub_key.public_key)
    assert again.version == 4 + DEFAULT_EVENT_GAP
    assert again(_device_id(later)) is None
    # The process read the gaps before and after the restore (a fold over the chain that
    # started again when the chain changed under it): the same as one fresh read.
    with hub.state.engine.connect() as conn:
        assert hub.state.roster_gaps.read(conn) == RestoreGaps().read(conn) == DEFAULT_EVENT_GAP

    # The limit (docs/hub.md "Restore"): the same older backup restored a second time has
    # one marker again, not two, so its roster is below the one held, as event numbers are.
    _drop_connections(hub)
    assert kyukyu(restore) == 0
    _drop_connections(hub)
    with pytest.raises(SnapshotRollback):
        held.accept(await _roster(hub, hospital))


def _device_id(device: Signer) -> str:
    return device.key_id.removeprefix("device:")
