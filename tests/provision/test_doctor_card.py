"""``kyukyu doctor``'s card test: a virtual card on vpcd read and checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from edge.card_sim import TestCA
from edge.provision import DeviceLayout, update_config
from tests.cli.conftest import Plugged, cli_ca, plug  # noqa: F401  (fixtures)
from tests.components import Pcscd
from tests.provision._hub import LiveHub, live_hub
from tests.provision.conftest import KYUKYU_BIN, run_cli, run_json


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with live_hub(tmp_path_factory.mktemp("hub")) as h:
        yield h


def _line(text: str, check: str) -> str:
    hits = [ln for ln in text.splitlines() if ln[5:].split(" ", 1)[0] == check]
    assert len(hits) == 1, text
    return hits[0]


def test_card_on_the_reader_is_read_and_checked(
    tmp_path: Path,
    hub: LiveHub,
    pcscd: Pcscd,
    cli_ca: TestCA,  # noqa: F811
    plug: Callable[[Any], Plugged],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    device = tmp_path / "root"
    device.mkdir()
    for argv in (
        ["provision", "install", "--root", str(device), "--kyukyu-bin", KYUKYU_BIN],
        ["provision", "enroll", "--root", str(device), "--hub", hub.url, f"--token={hub.token()}"],
    ):
        rc, out = run_json(capsys, *argv)
        assert rc == 0, out
    layout = DeviceLayout(device)
    update_config(layout, {"reader_name": pcscd.readers[0], "test_roots": True})
    roots = device / "etc/kyukyu/jpki-roots"
    for i, cert in enumerate(cli_ca.roots):
        (roots / f"test-{i}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    rc, out, _ = run_cli(capsys, "doctor", "--root", str(device))
    assert "no card on the reader" in _line(out, "card")
    plug(cli_ca.issue_card())
    rc, out, _ = run_cli(capsys, "doctor", "--root", str(device))
    line = _line(out, "card")
    assert line.startswith("OK   card"), line
    assert "certificate trusted under test-" in line
    assert _line(out, "roots").startswith("WARN roots")  # test mode is flagged
    assert rc == 0
