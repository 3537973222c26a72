"""``promtool`` (Debian's ``prometheus`` package, installed by scripts/bootstrap): a test
that needs it fails when it is missing, never skips."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: apt-get install prometheus (scripts/bootstrap)")
    return subprocess.run(
        [exe, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
