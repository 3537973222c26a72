"""The ``NOTIFY`` payloads that carry events to the other processes (PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

from hub_server.core.events.pending import PendingEvent
from hub_server.core.events.sse import SHARED

__all__ = [
    "AVAILABILITY_CHANNEL",
    "CHANNEL",
    "REVOKED_CHANNEL",
    "availability_notification",
    "notification_payload",
    "notification_prefix_suffix",
    "parse_availability_notification",
    "parse_notification",
]

CHANNEL = "kyukyu_events"
#: ``NOTIFY kyukyu_revoked, '<recipient>'``: every process closes that identity's streams.
REVOKED_CHANNEL = "kyukyu_revoked"

#: ``NOTIFY kyukyu_availability``: a hospital's 応需状況 changed; every process pushes the
#: stream text to its device streams of those topics (``availability_notification``).
AVAILABILITY_CHANNEL = "kyukyu_availability"

_MAX_NOTIFY = 7900  # PostgreSQL's payload limit is 8000 bytes


def notification_payload(events: list[PendingEvent], origin: str = "") -> str:
    """JSON ``{"o": origin, "e": [[recipient, seq, kind], ...], "d": data}``.

    The event data rides along when it is the same for every event (a case and its
    recipients) and fits; otherwise the other processes read the rows.
    """
    items = [[ev.recipient, ev.seq, ev.kind] for ev in events]
    first = events[0].data if events else None
    if first is not None and all(ev.data == first for ev in events):
        text = json.dumps({"o": origin, "e": items, "d": first}, separators=(",", ":"))
        if len(text.encode()) <= _MAX_NOTIFY:
            return text
    return json.dumps({"o": origin, "e": items}, separators=(",", ":"))


def notification_prefix_suffix(
    data: dict[str, Any] | None, origin: str, count: int
) -> tuple[str, str]:
    """The text around the ``[[recipient, seq, kind], ...]`` array of a notification that
    the database completes (the numbers are known only there); the same JSON as
    ``notification_payload``, the data included when it fits whatever the numbers."""
    pre = json.dumps({"o": origin}, separators=(",", ":"))[:-1] + ',"e":'
    # The text of the data is at least as long as its strings: a v2 case (a 16 KB envelope)
    # is known too big before it is encoded.
    strings = 0 if data is None else sum(len(v) for v in data.values() if isinstance(v, str))
    if data is not None and strings < _MAX_NOTIFY:
        suffix = ',"d":' + json.dumps(data, separators=(",", ":")) + "}"
        # An item is at most ~85 bytes: ["hospital:<40>", <19 digits>, "case"],
        if len(pre.encode()) + len(suffix.encode()) + 100 * count <= _MAX_NOTIFY:
            return pre, suffix
    return pre, "}"


def parse_notification(payload: str) -> tuple[str, list[PendingEvent]]:
    """The inverse of ``notification_payload``: (origin, events; data None when left out).

    Call it on the event loop: the data's JSON text in the notification is kept as the
    text its streams write (``format_sse``), so it is not encoded again in every process.
    """
    try:
        doc = json.loads(payload)
        data = doc.get("d")
        events = [PendingEvent(str(r), int(q), str(k), data) for r, q, k in doc["e"]]
        origin = str(doc.get("o", ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", []
    if isinstance(data, dict) and data:
        _remember_text(data, payload)
    return origin, events


def _remember_text(data: dict[str, Any], payload: str) -> None:
    # The members before "d" are the origin (hex) and the [recipient, seq, kind] items:
    # their strings hold no raw quote, so the first ',"d":' is the top-level key's. The
    # notification's JSON is ASCII-escaped: no line break of any kind can be in it.
    at = payload.find(',"d":')
    text = payload[at + 5 : -1] if at > 0 and payload.endswith("}") else ""
    if text.isascii() and text.startswith("{") and text.endswith("}"):
        SHARED.put(data, text)


def availability_notification(origin: str, topics: frozenset[str], text: str) -> str:
    """JSON ``{"o": origin, "t": [topic, ...], "x": stream text}`` (ASCII-escaped)."""
    payload = json.dumps({"o": origin, "t": sorted(topics), "x": text}, separators=(",", ":"))
    if len(payload.encode()) > _MAX_NOTIFY:  # 18 items with notes fit; never seen bigger
        payload = json.dumps({"o": origin, "t": sorted(topics), "x": ""}, separators=(",", ":"))
    return payload


def parse_availability_notification(payload: str) -> tuple[str, frozenset[str], str]:
    """(origin, topics, stream text); text "" when left out or unreadable."""
    try:
        doc = json.loads(payload)
        return str(doc["o"]), frozenset(str(t) for t in doc["t"]), str(doc.get("x") or "")
    except (ValueError, TypeError, KeyError):
        return "", frozenset(), ""
