"""Per-APDU round trip of the virtual card: in process, nfcpy udp, pcscd+vpcd (tuned / untuned).

Prints one JSON line (milliseconds, medians). Needs pcscd + vsmartcard-vpcd (scripts/bootstrap).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.card_sim import KeyPool, NfcUdpFrontEnd, TestCA, VirtualCard, VpcdFrontEnd
from edge.reader import Connection, LoopbackConnection
from edge.reader.nfc import NfcReader
from edge.reader.pcsc import PcscReaders
from tests.components import running_pcscd

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_CERT = bytes.fromhex("00A4020C02000A")
READ_4 = bytes.fromhex("00B0000004")
READ_256 = bytes.fromhex("00B0000000")


def _median_ms(conn: Connection, apdu: bytes, n: int) -> float:
    conn.transmit(SELECT_JPKI)
    conn.transmit(SELECT_CERT)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        conn.transmit(apdu)
        samples.append(time.perf_counter() - t)
    return round(statistics.median(samples) * 1000, 4)


def _both(conn: Connection, n: int) -> dict[str, float]:
    return {"read_4_ms": _median_ms(conn, READ_4, n), "read_256_ms": _median_ms(conn, READ_256, n)}


def main() -> None:
    ca = TestCA.create(key_factory=KeyPool(3))
    card = VirtualCard(ca.issue_card())
    out: dict[str, object] = {"benchmark": "card_sim_roundtrip"}
    out["loopback"] = _both(LoopbackConnection(card), 2000)

    fe_nfc = NfcUdpFrontEnd(card, "127.0.0.1", 54329).start()
    with NfcReader("udp:127.0.0.1:54329") as reader:
        conn = reader.wait_for_card(timeout=10)
        out["nfc_udp"] = _both(conn, 500)
        conn.close()
    fe_nfc.stop()

    with running_pcscd(Path(tempfile.mkdtemp())) as pcscd:
        name = pcscd.readers[0]
        for label, tuned, n in (("pcscd_vpcd", True, 2000), ("pcscd_vpcd_untuned", False, 20)):
            fe = VpcdFrontEnd(card, pcscd.host, pcscd.ports[0], low_latency=tuned).start()
            with PcscReaders() as readers:
                conn2 = readers.wait_for_card(name, timeout=10)
                out[label] = _both(conn2, n)
                conn2.close()
                fe.stop()
                readers.wait_for_removal(name, timeout=10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
