"""Live fan-out of numbered events to SSE streams.

The database is the source of truth (the ``events`` table, numbered per recipient);
the bus only wakes streams up. In one process a publish hands the rendered event to
the subscribers directly (no query); across processes on PostgreSQL each
transaction that appends events also sends ``NOTIFY kyukyu_events`` (JSON: origin,
recipients and numbers, and the event data when it fits in a notification), and every
other process's ``PgListener`` hands them to its local streams. A stream that sees a gap,
or an event without its data, reads from the database.

One module per reason to change:

- ``pending``: ``PendingEvent``, what every other part passes around;
- ``sse``: the WHATWG event-stream text of an event (``format_sse``, ``sse_json``) and
  the text shared by the recipients of one case;
- ``bus``: the in-process registry of open streams (``EventBus``, ``Subscription``);
- ``notify``: the ``NOTIFY`` payload codec and channel names;
- ``listener``: ``PgListener``, the cross-process listener on libpq.
"""

from __future__ import annotations

from hub_server.core.events.bus import (
    DEFAULT_MAX_QUEUED,
    EventBus,
    Subscription,
    TooManyStreams,
)
from hub_server.core.events.listener import PgListener
from hub_server.core.events.notify import (
    AVAILABILITY_CHANNEL,
    CHANNEL,
    REVOKED_CHANNEL,
    availability_notification,
    notification_payload,
    notification_prefix_suffix,
    parse_availability_notification,
    parse_notification,
)
from hub_server.core.events.pending import PendingEvent
from hub_server.core.events.sse import KEEPALIVE, format_sse, sse_json

__all__ = [
    "AVAILABILITY_CHANNEL",
    "CHANNEL",
    "DEFAULT_MAX_QUEUED",
    "KEEPALIVE",
    "REVOKED_CHANNEL",
    "EventBus",
    "PendingEvent",
    "PgListener",
    "Subscription",
    "TooManyStreams",
    "availability_notification",
    "format_sse",
    "notification_payload",
    "notification_prefix_suffix",
    "parse_availability_notification",
    "parse_notification",
    "sse_json",
]
