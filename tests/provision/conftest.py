"""Provisioning fixtures: a staging root with the units installed, the kyukyu CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from kyukyu.cli import main

KYUKYU_BIN = "/usr/bin/kyukyu"  # where the staging image's units expect kyukyu


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    rc, out, _ = run_cli(capsys, *argv, "--json")
    return rc, json.loads(out.strip().splitlines()[-1])


def os_binaries(root: Path) -> None:
    """What the OS image provides: systemd's own units and the programs the units run.

    Copied from this machine (the Debian packages systemd, cage, chromium; kyukyu from the
    venv): ``systemd-analyze verify --root`` resolves ExecStart= inside the root.
    """
    units = root / "usr/lib/systemd/system"
    if not units.is_dir():
        shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    sources = {
        "kyukyu": Path(sys.prefix) / "bin/kyukyu",
        "cage": Path("/usr/bin/cage"),
        "chromium": Path("/usr/bin/chromium"),
    }
    for name, src in sources.items():
        if not src.is_file():
            pytest.fail(f"{src} is missing: run scripts/bootstrap (Debian package {name})")
        shutil.copy2(src, root / "usr/bin" / name)
