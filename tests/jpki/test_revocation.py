"""The revocation snapshot: compact, versioned, binary search, a signature hook."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.jpki import RevocationSnapshotError
from edge.jpki.revocation import MAGIC, RevocationSnapshot


def test_round_trip_and_lookup(tmp_path: Path) -> None:
    serials = [5, 1, 0xABCDEF, 2**159, 77, 5]
    snap = RevocationSnapshot.from_serials(serials, sequence=3, issued_at=1_700_000_000)
    assert len(snap) == 5
    assert snap.width == 20
    data = snap.to_bytes()
    assert data[:4] == MAGIC
    p = tmp_path / "revoked.bin"
    snap.save(p)
    back = RevocationSnapshot.load(p)
    assert (back.sequence, back.issued_at, back.count) == (3, 1_700_000_000, 5)
    for s in serials:
        assert s in back
    for s in (0, 2, 6, 0xABCDEE, 2**160, -1, "5"):
        assert s not in back


def test_empty_snapshot() -> None:
    snap = RevocationSnapshot.from_bytes(RevocationSnapshot.from_serials([]).to_bytes())
    assert 1 not in snap
    assert len(snap) == 0


def test_million_serials() -> None:
    rng = random.Random(1)
    serials = [rng.getrandbits(40) + 1 for _ in range(1_000_000)]
    snap = RevocationSnapshot.from_bytes(RevocationSnapshot.from_serials(serials).to_bytes())
    assert snap.width == 5
    assert len(snap.to_bytes()) < 5_100_000  # 5 bytes a serial plus a header
    for s in serials[:2000]:
        assert s in snap
    absent = set(serials)
    probes = [x for x in (rng.getrandbits(40) for _ in range(2000)) if x not in absent]
    assert not any(p in snap for p in probes)


def test_signature_hook() -> None:
    snap = RevocationSnapshot.from_serials([1, 2, 3], sequence=9).with_signature(b"SIG")
    data = snap.to_bytes()
    seen: list[tuple[bytes, bytes]] = []
    RevocationSnapshot.from_bytes(data, verify_signature=lambda p, s: seen.append((p, s)))
    assert seen == [(snap.signed_payload(), b"SIG")]

    def refuse(_p: bytes, _s: bytes) -> None:
        raise RevocationSnapshotError("bad signature")

    with pytest.raises(RevocationSnapshotError):
        RevocationSnapshot.from_bytes(data, verify_signature=refuse)


def _header(width: int = 1, count: int = 2, version: int = 1) -> bytes:
    return struct.pack(">4sHBBIQQ", MAGIC, version, width, 0, count, 0, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"KKRV",
        b"XXXX" + _header()[4:] + b"\x01\x02\x00\x00",
        _header(version=2) + b"\x01\x02\x00\x00",
        _header(width=0) + b"\x00\x00",
        _header(width=21) + b"\x00\x00",
        _header(count=3) + b"\x01\x02\x00\x00",  # truncated serials
        _header() + b"\x02\x01\x00\x00",  # not sorted
        _header() + b"\x01\x01\x00\x00",  # duplicate
        _header() + b"\x01\x02\x00\x05ab",  # signature shorter than declared
        _header() + b"\x01\x02\x00\x00extra",
    ],
)
def test_malformed_snapshots(data: bytes) -> None:
    with pytest.raises(RevocationSnapshotError):
        RevocationSnapshot.from_bytes(data)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RevocationSnapshotError):
        RevocationSnapshot.load(tmp_path / "none.bin")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_typed_errors(data: bytes) -> None:
    try:
        snap = RevocationSnapshot.from_bytes(data)
    except RevocationSnapshotError:
        return
    assert 1 in snap or 1 not in snap


@given(st.sets(st.integers(0, 2**64), max_size=200), st.integers(0, 2**64))
def test_membership_matches_a_set(serials: set[int], probe: int) -> None:
    snap = RevocationSnapshot.from_bytes(RevocationSnapshot.from_serials(serials).to_bytes())
    assert (probe in snap) == (probe in serials)
    assert all(s in snap for s in serials)
