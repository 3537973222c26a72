"""The event every part of the fan-out passes around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PendingEvent"]


@dataclass(frozen=True)
class PendingEvent:
    recipient: str
    seq: int
    kind: str
    data: dict[str, Any] | None  # None: known only by number (remote); read from the DB
