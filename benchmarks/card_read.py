"""Card read benchmark: our read-and-verify vs OpenSC's ``pkcs15-tool --read-certificate 01``.

Both read the same virtual card through the real pcscd and vpcd with the slow-link
quirk at 212 kbit/s, alternating, round after round. APDUs and bytes are counted
on the card side (every command and response crossing the virtual card), so
OpenSC's traffic is measured the same way as ours.

- ours: timed in process from card connect to the trust verdict (chain, policy,
  validity, revocation lookup in a 1,000,000-serial snapshot); interpreter start excluded;
- OpenSC: the whole ``pkcs15-tool`` process (it only reads; it verifies nothing);
- verify step alone: ``verify_auth_certificate`` with the 1,000,000-serial snapshot;
- the 照合番号B path (``collation_b``): the same read plus the text AP opened by
  照合番号B: four attributes, EF 0003 over them, EF 0004 against the pinned CVC CA
  key, EF 0007 and the card-presence signature; every part verified.

Prints exactly one JSON line. Usage: ``.venv/bin/python benchmarks/card_read.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.card_sim import KeyPool, Quirks, TestCA, VirtualCard, VpcdFrontEnd  # noqa: E402
from edge.jpki.read import ReadOptions, read_card  # noqa: E402
from edge.jpki.revocation import RevocationSnapshot  # noqa: E402
from edge.jpki.trust import TrustStore, cvc_ca_key, verify_auth_certificate  # noqa: E402
from edge.reader import ApduChannel  # noqa: E402
from edge.reader.pcsc import PcscReaders  # noqa: E402
from kyukyu import testing  # noqa: E402

LINK_KBPS = 212
PCSCD_LOCK = Path("/tmp/kyukyu-pcscd.lock")  # shared with the test fixtures
READER = "Virtual PCD 00 00"
SNAPSHOT_SERIALS = 1_000_000


class CountingCard(VirtualCard):
    """The virtual card, counting every APDU and byte it sees (both directions)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.count_lock = threading.Lock()
        self.apdus = 0
        self.bytes = 0

    def process(self, apdu: bytes) -> bytes:
        out = super().process(apdu)
        with self.count_lock:
            self.apdus += 1
            self.bytes += len(apdu) + len(out)
        return out

    def snapshot(self) -> tuple[int, int]:
        with self.count_lock:
            return self.apdus, self.bytes


@contextlib.contextmanager
def pcscd_lock() -> Iterator[None]:
    PCSCD_LOCK.touch(exist_ok=True)
    with PCSCD_LOCK.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ours(readers: PcscReaders, options: ReadOptions) -> float:
    t0 = time.perf_counter()
    conn = readers.wait_for_card(READER, timeout=10)
    try:
        result = read_card(ApduChannel(conn), options)
    finally:
        conn.close()
    elapsed = time.perf_counter() - t0
    assert result.verdict is not None
    assert result.verdict.trusted
    assert result.complete, result.first_error()
    if options.collation_b is not None:
        assert result.attributes_integrity
        assert result.card_presence.verified
    return elapsed


def _opensc(tool: str, index: str, expected_der: bytes) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(
        [tool, "--reader", index, "--read-certificate", "01"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if res.returncode != 0 or b"BEGIN CERTIFICATE" not in res.stdout:
        raise SystemExit(f"pkcs15-tool failed: {res.stderr.decode(errors='replace')}")
    return elapsed


def _verify_ms(der: bytes, store: TrustStore, snap: RevocationSnapshot, n: int = 200) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        verify_auth_certificate(der, store, revocation=snap)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    tool = shutil.which("pkcs15-tool")
    if tool is None:
        raise SystemExit("pkcs15-tool is not installed (Debian package opensc)")

    ca = TestCA.create(key_factory=KeyPool(3))
    image = ca.issue_card(profile="card")
    der = image.auth_certificate_der
    store = TrustStore.from_certificates(
        ca.roots,
        allow_test_roots=True,
        cvc_keys=[cvc_ca_key(ca.cvc_ca_key_id, ca.cvc_ca_public_key)],
    )
    rng = random.Random(7)
    serial = image.auth_certificate.serial_number
    serials = {rng.getrandbits(40) + 1 for _ in range(SNAPSHOT_SERIALS + 100)}
    serials.discard(serial)
    serials_list = sorted(serials)[:SNAPSHOT_SERIALS]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "revoked.bin"
        RevocationSnapshot.from_serials(serials_list, sequence=1).save(path)
        snap = RevocationSnapshot.load(path)
    options = ReadOptions(trust=store, revocation=snap)
    options_b = ReadOptions(trust=store, revocation=snap, collation_b=image.collation_b)

    card = CountingCard(image, quirks=Quirks(link_kbps=LINK_KBPS))
    ours_t: list[float] = []
    ours_io: list[tuple[int, int]] = []
    ossc_t: list[float] = []
    ossc_io: list[tuple[int, int]] = []
    b_t: list[float] = []
    b_io: list[tuple[int, int]] = []
    with pcscd_lock():
        testing.ensure_pcscd()
        fe = VpcdFrontEnd(card, testing.VPCD_HOST, testing.VPCD_PORTS[0]).start()
        try:
            if not fe.wait_connected(10):
                raise SystemExit("vpcd did not accept the virtual card")
            with PcscReaders() as readers:
                readers.wait_for_card(READER, timeout=10).close()
                index = str(readers.list().index(READER))
                # Warm-up (first connection, OpenSC's cache files), not measured.
                _ours(readers, options)
                _ours(readers, options_b)
                _opensc(tool, index, der)
                for _ in range(args.rounds):
                    a0 = card.snapshot()
                    ours_t.append(_ours(readers, options))
                    a1 = card.snapshot()
                    ossc_t.append(_opensc(tool, index, der))
                    a2 = card.snapshot()
                    b_t.append(_ours(readers, options_b))
                    a3 = card.snapshot()
                    ours_io.append((a1[0] - a0[0], a1[1] - a0[1]))
                    ossc_io.append((a2[0] - a1[0], a2[1] - a1[1]))
                    b_io.append((a3[0] - a2[0], a3[1] - a2[1]))
        finally:
            fe.stop()

    verify_ms = _verify_ms(der, store, snap)
    ours_med = statistics.median(ours_t) * 1000
    ossc_med = statistics.median(ossc_t) * 1000
    out = {
        "benchmark": "card_read",
        "link_kbps": LINK_KBPS,
        "rounds": args.rounds,
        "certificate_bytes": len(der),
        "ours": {
            "apdus": statistics.median(a for a, _ in ours_io),
            "bytes": statistics.median(b for _, b in ours_io),
            "median_ms": round(ours_med, 1),
        },
        "opensc": {
            "apdus": statistics.median(a for a, _ in ossc_io),
            "bytes": statistics.median(b for _, b in ossc_io),
            "median_ms": round(ossc_med, 1),
        },
        "collation_b": {
            "apdus": statistics.median(a for a, _ in b_io),
            "bytes": statistics.median(b for _, b in b_io),
            "median_ms": round(statistics.median(b_t) * 1000, 1),
        },
        "ratio_ours_over_opensc": round(ours_med / ossc_med, 3),
        "ratio_target": 0.7,
        "verify_ms_median": round(verify_ms, 3),
        "verify_target_ms": 5.0,
        "revocation_serials": len(snap),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
