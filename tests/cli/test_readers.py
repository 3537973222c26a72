"""``kyukyu readers`` against the real pcscd with vpcd."""

from __future__ import annotations

import pytest

from tests.components import Pcscd

from .conftest import run_cli

pytestmark = pytest.mark.pcscd


def test_lists_the_virtual_readers(
    pcscd: Pcscd, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, out = run_cli(["readers", "--json"], capsys, monkeypatch)
    assert rc == 0
    readers = out["readers"]
    assert isinstance(readers, list)
    for name in pcscd.readers:
        assert any(r.startswith(name) for r in readers), readers
