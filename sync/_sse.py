"""A small Server-Sent Events parser (WHATWG HTML, "event stream interpretation")."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SseEvent", "parse_sse"]


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Turn decoded lines (without line endings) into events; comments are skipped."""
    data: list[str] = []
    event = ""
    last_id: str | None = None
    seen_id = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if data:
                yield SseEvent(last_id if seen_id else None, event or "message", "\n".join(data))
            data, event, seen_id = [], "", False
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\x00" not in value:
            last_id, seen_id = value, True
