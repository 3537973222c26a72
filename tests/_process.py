"""``python -m kyukyu ...`` as a process, the way an operator or a systemd unit runs it.

The child runs this checkout's code (``PYTHONPATH``), sees no ``KYUKYU_*`` variable nor
``$CREDENTIALS_DIRECTORY`` of the test's own environment, and reads no settings file
unless the test names one: each role's ``KYUKYU_<ROLE>_CONFIG`` points at an absent
file in ``tmp_path`` (``kyukyu.testing.cli_env``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kyukyu.testing import CONFIG_VARIABLES, ROOT, cli_env

__all__ = ["CONFIG_VARIABLES", "ROOT", "cli_env", "run_kyukyu"]


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
