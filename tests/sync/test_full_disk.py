"""A full disk (a 512 KiB tmpfs): a clear typed error and no queued case lost."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync import StorageFull, seal_case
from sync.outbox import Outbox

DEVICE = Ed25519PrivateKey.generate()
HOSP = {f"h{i}": X25519PrivateKey.generate().public_key() for i in range(5)}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (need root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def sealed(i: int) -> bytes:
    return seal_case(
        os.urandom(6000),
        case_id=f"case-{i:04d}",
        device_id="dev-1",
        device_key=DEVICE,
        recipients=HOSP,
    )


def test_full_disk_is_a_clear_error_and_keeps_queued_cases(tiny_disk: Path) -> None:
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 96 * 1024)  # freed later to show recovery
    ob = Outbox(tiny_disk / "data" / "outbox.db")
    queued: list[str] = []
    error: StorageFull | None = None
    for i in range(200):
        try:
            queued.append(ob.enqueue(sealed(i)).case_id)
        except StorageFull as exc:
            error = exc
            break
    assert error is not None, "the tmpfs never filled up"
    assert error.code == "storage_full"
    assert "保持" in error.message_ja
    assert "database or disk is full" in str(error)
    assert len(queued) >= 8  # WAL and pages take their share of 416 KiB
    # The connection still works and holds every case queued before the error ...
    assert ob.pending_ids() == queued
    with pytest.raises(StorageFull):  # ... and keeps refusing clearly while the disk is full
        ob.enqueue(sealed(999))
    ob.close()
    # A restart (new process, same files) finds them all, each intact.
    again = Outbox(tiny_disk / "data" / "outbox.db")
    assert again.pending_ids() == queued
    assert all(len(c.envelope) > 6000 for c in again.due(limit=1000))
    # Space comes back: queuing works again.
    filler.unlink()
    again.enqueue(sealed(1000))
    assert again.pending_ids() == [*queued, "case-1000"]
    again.close()
