"""benchmarks/hub_faults.py (the fault runs, not in the test command: it is load) takes the
options the lead re-runs it with after a merge: ``--quick`` and ``--faults``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "hub_faults.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def test_an_unknown_fault_is_refused_before_anything_starts() -> None:
    done = _run("--quick", "--faults", "db_down,meteor")
    assert done.returncode == 2
    assert "meteor" in done.stderr
    assert "worker_kill" in done.stderr  # the faults it knows are named


def test_help_names_every_fault() -> None:
    done = _run("--help")
    assert done.returncode == 0
    for fault in ("worker_kill", "db_restart", "db_down", "disk_full", "receiver_pause"):
        assert fault in done.stdout
