"""``python -m kyukyu ...`` as a child process, the way an operator or a systemd unit runs it.

The child runs this checkout's code (``PYTHONPATH``), sees no ``KYUKYU_*`` variable nor
``$CREDENTIALS_DIRECTORY`` of the caller's own environment, and reads no settings file
unless the caller names one: each role's ``KYUKYU_<ROLE>_CONFIG`` points at an absent
file in the directory given.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["CONFIG_VARIABLES", "ROOT", "cli_env", "free_port"]

#: This checkout (the children's ``PYTHONPATH`` and working directory).
ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARIABLES = ("KYUKYU_EDGE_CONFIG", "KYUKYU_HUB_CONFIG", "KYUKYU_HOSPITAL_CONFIG")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The child's environment: the caller's, cleaned as the module docstring says (the
    absent settings files in ``tmp_path``), + ``extra``."""
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


def free_port() -> int:
    """A loopback TCP port free now (for a server another process will bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
