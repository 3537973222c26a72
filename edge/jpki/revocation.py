"""A compact, versioned snapshot of revoked certificate serials for offline checks.

J-LIS gives CRL/OCSP only to approved verifiers; the platform is that verifier
and hands devices this snapshot. Layout (all big-endian)::

    magic    4  b"KKRV"
    version  2  1
    width    1  bytes per serial (fixed, 1..20)
    flags    1  0
    count    4  number of serials
    sequence 8  snapshot number (grows with every platform release)
    issued   8  unix seconds (UTC) when the platform made it
    serials  count * width, sorted ascending, unique
    siglen   2  signature length (0 = unsigned)
    sig      siglen  the platform's signature over everything before ``siglen``

Lookup is a binary search over a memoryview: O(log n), no parsing per entry,
so a million serials cost a few microseconds per look-up.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import RevocationSnapshotError

__all__ = ["FORMAT_VERSION", "MAGIC", "RevocationSnapshot", "SignatureCheck"]

MAGIC = b"KKRV"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sHBBIQQ")
_SIGLEN = struct.Struct(">H")
_MAX_WIDTH = 20  # RFC 5280: serials are at most 20 octets

# Checks the platform's signature over the snapshot body; raises on failure.
SignatureCheck = Callable[[bytes, bytes], None]


class _Keys:
    """A read-only sequence view of the fixed-width serials, for ``bisect``."""

    __slots__ = ("_count", "_mv", "_width")

    def __init__(self, mv: memoryview, width: int, count: int) -> None:
        self._mv, self._width, self._count = mv, width, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:
        w = self._width
        return self._mv[i * w : (i + 1) * w].tobytes()


@dataclass(eq=False)
class RevocationSnapshot:
    """Revoked serials, sorted and fixed-width, with a version header."""

    width: int
    count: int
    sequence: int
    issued_at: int
    _serials: bytes = field(repr=False)
    signature: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        self._keys = _Keys(memoryview(self._serials), self.width, self.count)

    @classmethod
    def from_serials(
        cls, serials: Iterable[int], *, sequence: int = 0, issued_at: int | None = None
    ) -> RevocationSnapshot:
        """Build a snapshot from integer serials (duplicates are dropped)."""
        ordered = sorted(set(serials))
        if ordered and ordered[0] < 0:
            raise RevocationSnapshotError("negative serial")
        width = max(1, (ordered[-1].bit_length() + 7) // 8) if ordered else 1
        if width > _MAX_WIDTH:
            raise RevocationSnapshotError("serial longer than 20 bytes")
        body = b"".join(s.to_bytes(width, "big") for s in ordered)
        stamp = int(time.time()) if issued_at is None else issued_at
        return cls(width, len(ordered), sequence, stamp, body)

    def __contains__(self, serial: object) -> bool:
        if not isinstance(serial, int) or serial < 0:
            return False
        if serial.bit_length() > self.width * 8:
            return False
        key = serial.to_bytes(self.width, "big")
        i = bisect.bisect_left(self._keys, key)
        return i < self.count and self._keys[i] == key

    def __len__(self) -> int:
        return self.count

    def signed_payload(self) -> bytes:
        """The bytes the platform signs (header and serials)."""
        header = _HEADER.pack(
            MAGIC, FORMAT_VERSION, self.width, 0, self.count, self.sequence, self.issued_at
        )
        return header + self._serials

    def to_bytes(self) -> bytes:
        return self.signed_payload() + _SIGLEN.pack(len(self.signature)) + self.signature

    def with_signature(self, signature: bytes) -> RevocationSnapshot:
        return RevocationSnapshot(
            self.width, self.count, self.sequence, self.issued_at, self._serials, signature
        )

    @classmethod
    def from_bytes(
        cls, data: bytes, *, verify_signature: SignatureCheck | None = None
    ) -> RevocationSnapshot:
        """Parse and check a snapshot; ``verify_signature(payload, sig)`` is the platform hook."""
        if len(data) < _HEADER.size + _SIGLEN.size:
            raise RevocationSnapshotError("too short")
        magic, version, width, _flags, count, sequence, issued = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise RevocationSnapshotError("not a revocation snapshot")
        if version != FORMAT_VERSION:
            raise RevocationSnapshotError(f"unsupported version {version}")
        if not 1 <= width <= _MAX_WIDTH:
            raise RevocationSnapshotError("bad serial width")
        end = _HEADER.size + count * width
        if len(data) < end + _SIGLEN.size:
            raise RevocationSnapshotError("truncated serials")
        (siglen,) = _SIGLEN.unpack_from(data, end)
        if len(data) != end + _SIGLEN.size + siglen:
            raise RevocationSnapshotError("length does not match the header")
        serials = bytes(data[_HEADER.size : end])
        signature = bytes(data[end + _SIGLEN.size :])
        if verify_signature is not None:
            verify_signature(bytes(data[:end]), signature)
        _check_sorted(serials, width, count)
        return cls(width, count, sequence, issued, serials, signature)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, verify_signature: SignatureCheck | None = None
    ) -> RevocationSnapshot:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise RevocationSnapshotError(f"cannot read {path}") from exc
        return cls.from_bytes(data, verify_signature=verify_signature)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_bytes(self.to_bytes())


def _check_sorted(serials: bytes, width: int, count: int) -> None:
    # An unsorted file would make the binary search miss revoked serials silently.
    prev = b""
    for i in range(0, count * width, width):
        cur = serials[i : i + width]
        if cur <= prev:
            raise RevocationSnapshotError("serials not strictly ascending")
        prev = cur
