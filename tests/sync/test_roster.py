"""The hub-signed device roster a hospital keeps for the direct route (``sync.roster``):
rollback refused, signature checked, one bad entry costs only itself, kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import BadHubSignature, SnapshotRollback
from sync.roster import ROSTER_FORMAT, DeviceRoster
from sync.signed import signed_document
from sync.signing import public_key_to_b64

HUB = Ed25519PrivateKey.generate()
DEVICE = Ed25519PrivateKey.generate()


def roster(
    version: int,
    devices: list[dict[str, Any]],
    key: Ed25519PrivateKey = HUB,
    issued_at: str = "2026-12-06T00:00:00+00:00",
) -> Any:
    body = {
        "format": ROSTER_FORMAT,
        "version": version,
        "issued_at": issued_at,
        "devices": devices,
    }
    return signed_document("roster", body, key, "hub:test")


def entry(
    device_id: str, *, revoked: bool = False, department: str = "東京消防庁"
) -> dict[str, Any]:
    return {
        "id": device_id,
        "public_key": public_key_to_b64(DEVICE.public_key()),
        "fire_department": department,
        "revoked": revoked,
    }


def test_a_rolled_back_roster_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "device-roster.json"
    held = DeviceRoster(path, HUB.public_key())
    assert held.accept(roster(3, [entry("d1", revoked=True)])) == 3
    assert held("d1") is None  # revoked: refused on the direct route
    # An older roster, correctly signed, that still had d1 unrevoked: refused.
    with pytest.raises(SnapshotRollback):
        held.accept(roster(2, [entry("d1")]))
    assert held.version == 3
    assert held("d1") is None
    assert json.loads(path.read_text())["roster"]["version"] == 3
    # A restart keeps the floor: the file is the roster held.
    again = DeviceRoster(path, HUB.public_key())
    assert again.version == 3
    with pytest.raises(SnapshotRollback):
        again.accept(roster(2, [entry("d1")]))
    assert again.accept(roster(4, [entry("d1", revoked=True), entry("d2")])) == 4
    assert again("d2") is not None


def test_only_the_pinned_hub_key_counts(tmp_path: Path) -> None:
    held = DeviceRoster(tmp_path / "r.json", HUB.public_key())
    with pytest.raises(BadHubSignature):
        held.accept(roster(9, [entry("d1")], key=Ed25519PrivateKey.generate()))
    assert held.version == -1
    assert held("d1") is None  # unknown: refused


def test_one_bad_entry_costs_only_itself(tmp_path: Path) -> None:
    held = DeviceRoster(tmp_path / "r.json", HUB.public_key())
    bad = {"id": "d0", "public_key": "not base64!", "revoked": False}
    held.accept(roster(1, [bad, {"revoked": False}, entry("d1")]))
    assert held("d0") is None
    vouched = held.vouched("d1")
    assert vouched is not None
    assert vouched.fire_department == "東京消防庁"
    assert len(held) == 1


def test_a_revocation_once_held_is_kept_whatever_a_newer_roster_says(tmp_path: Path) -> None:
    """The platform has no un-revoke: a newer roster listing a revoked device unrevoked (its
    database went back to a backup taken before the revocation) does not bring it back,
    also after a restart; a damaged list of kept revocations costs only itself."""
    path = tmp_path / "device-roster.json"
    held = DeviceRoster(path, HUB.public_key())
    held.accept(roster(3, [entry("d1", revoked=True), entry("d2")]))
    assert held.accept(roster(1_000_002, [entry("d1"), entry("d2"), entry("d3")])) == 1_000_002
    assert held("d1") is None
    vouched = held.vouched("d1")
    assert vouched is not None
    assert vouched.revoked
    assert held("d2") is not None
    assert held("d3") is not None
    kept = path.with_name(path.name + ".revoked")
    assert json.loads(kept.read_text()) == ["d1"]
    assert kept.stat().st_mode & 0o777 == 0o600
    again = DeviceRoster(path, HUB.public_key())
    assert again("d1") is None
    assert again("d2") is not None
    kept.write_text("{not json")
    assert DeviceRoster(path, HUB.public_key())("d1") is not None  # the roster alone


def test_the_roster_held_issued_again_writes_nothing(tmp_path: Path) -> None:
    """The hospital fetches the roster every minute; the same roster issued again (a new
    issue time) is checked but neither file is rewritten; any other change is."""
    path = tmp_path / "device-roster.json"
    revoked_path = tmp_path / "device-roster.json.revoked"
    held = DeviceRoster(path, HUB.public_key())
    assert held.accept(roster(2, [entry("d1"), entry("d2", revoked=True)])) == 2
    files = (path.stat().st_ino, revoked_path.stat().st_ino)
    again = roster(2, [entry("d1"), entry("d2", revoked=True)], issued_at="2026-12-06T00:01:00Z")
    for kept in (held, DeviceRoster(path, HUB.public_key())):  # and after a restart
        assert kept.accept(again) == 2
        assert (path.stat().st_ino, revoked_path.stat().st_ino) == files
        assert kept("d1") is not None
        assert kept("d2") is None
    with pytest.raises(BadHubSignature):  # still checked: a forged one is refused
        held.accept(roster(2, [entry("d1"), entry("d2")], key=Ed25519PrivateKey.generate()))
    assert held("d2") is None
    # The same version saying something else (a department renamed): kept and written.
    renamed = roster(2, [entry("d1", department="千代田消防署"), entry("d2", revoked=True)])
    assert held.accept(renamed) == 2
    assert path.stat().st_ino != files[0]
    vouched = held.vouched("d1")
    assert vouched is not None
    assert vouched.fire_department == "千代田消防署"
    assert json.loads(path.read_text())["roster"]["devices"][0]["fire_department"] == "千代田消防署"
