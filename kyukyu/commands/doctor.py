"""``kyukyu doctor``: check a device (filled in below)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Registered once edge.doctor exists."""
