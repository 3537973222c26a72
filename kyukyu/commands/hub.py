"""`kyukyu hub` (not yet built)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Nothing yet: the issue that builds this role adds its commands here."""
