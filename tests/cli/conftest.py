"""CLI fixtures: a test CA with its roots on disk, a virtual card in vpcd slot 0."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.card_sim import CardImage, KeyPool, TestCA, VirtualCard, VpcdFrontEnd
from edge.reader.pcsc import PcscReaders
from kyukyu.cli import main
from tests.components import Pcscd

Plugged = tuple[VirtualCard, VpcdFrontEnd, str]


@pytest.fixture(scope="session")
def cli_ca() -> TestCA:
    ca = TestCA.create(key_factory=KeyPool(4))
    ca.key_factory = KeyPool(2)
    return ca


@pytest.fixture(scope="session")
def roots_dir(cli_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The roots and the CVC CA key (cvc-ca-<key id>.pem), as a technician installs them.
    return cli_ca.write_roots(tmp_path_factory.mktemp("roots"))


@pytest.fixture
def plug(pcscd: Pcscd) -> Iterator[Callable[[CardImage], Plugged]]:
    """``plug(image)``: the card in ``Virtual PCD 00 00``, seen by pcscd; unplugged after."""
    plugged: list[VpcdFrontEnd] = []
    name = pcscd.readers[0]

    def _plug(image: CardImage) -> Plugged:
        card = VirtualCard(image)
        fe = VpcdFrontEnd(card, pcscd.host, pcscd.ports[0]).start()
        plugged.append(fe)
        assert fe.wait_connected(10), "vpcd did not accept the virtual card"
        with PcscReaders() as readers:
            readers.wait_for_card(name, timeout=10).close()
        return card, fe, name

    yield _plug
    for fe in plugged:
        fe.stop()
    with PcscReaders() as readers:
        readers.wait_for_removal(name, timeout=10)


def run_cli(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str = "",
) -> tuple[int, dict[str, object]]:
    """Run ``kyukyu`` in process; return the exit code and the one JSON object printed."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    rc = main(args)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return rc, json.loads(out[0])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
