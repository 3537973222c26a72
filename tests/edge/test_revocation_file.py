"""The device uses the stored revocation snapshot only if the pinned hub key signed it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.flow import load_revocation
from edge.jpki.revocation import RevocationSnapshot

REVOKED = 0x1234_5678_9ABC


def _signed(key: Ed25519PrivateKey) -> bytes:
    snap = RevocationSnapshot.from_serials([REVOKED, 7, 99], sequence=3)
    return snap.with_signature(key.sign(snap.signed_payload())).to_bytes()


def test_a_snapshot_signed_by_the_pinned_hub_is_used(tmp_path: Path) -> None:
    hub = Ed25519PrivateKey.generate()
    path = tmp_path / "revocation.kkrv"
    path.write_bytes(_signed(hub))
    snap = load_revocation(path, hub.public_key())
    assert snap is not None
    assert REVOKED in snap
    assert snap.sequence == 3


@pytest.mark.parametrize("how", ["stranger", "tampered", "unsigned", "garbage"])
def test_a_forged_or_damaged_snapshot_is_not_used(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Ed25519PrivateKey.generate()
    if how == "stranger":
        data = _signed(Ed25519PrivateKey.generate())
    elif how == "tampered":
        raw = bytearray(_signed(hub))
        raw[-70] ^= 0x01  # a serial byte: one revoked certificate "un-revoked"
        data = bytes(raw)
    elif how == "unsigned":
        data = RevocationSnapshot.from_serials([REVOKED]).to_bytes()
    else:
        data = b"KKRV" + b"\x00" * 5
    path = tmp_path / "revocation.kkrv"
    path.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="edge.flow"):
        assert load_revocation(path, hub.public_key()) is None
    assert "not used" in caplog.text


def test_no_snapshot_is_no_snapshot(tmp_path: Path) -> None:
    hub = Ed25519PrivateKey.generate()
    assert load_revocation(tmp_path / "missing.kkrv", hub.public_key()) is None
