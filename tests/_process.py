"""``python -m kyukyu ...`` as a process, the way an operator or a systemd unit runs it.

The child runs this checkout's code (``PYTHONPATH``), sees no ``KYUKYU_*`` variable nor
``$CREDENTIALS_DIRECTORY`` of the test's own environment, and reads no settings file
unless the test names one: each role's ``KYUKYU_<ROLE>_CONFIG`` points at an absent
file in ``tmp_path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG_VARIABLES = ("KYUKYU_EDGE_CONFIG", "KYUKYU_HUB_CONFIG", "KYUKYU_HOSPITAL_CONFIG")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The child's environment: the test's, cleaned as the module docstring says, + ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KYUKYU_") and k != "CREDENTIALS_DIRECTORY"
    }
    for name in CONFIG_VARIABLES:
        env[name] = str(tmp_path / "absent.env")
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_kyukyu(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m kyukyu ARGS`` in ``tmp_path`` with ``cli_env(tmp_path, **env)``."""
    return subprocess.run(
        [sys.executable, "-m", "kyukyu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=cli_env(tmp_path, **env),
        check=False,
    )
