"""The services' log: JSON lines, one schema for every process of the platform (the
supervisor and each worker) and of a hospital's receiving service.

Each line is one JSON object: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
``logger``, ``pid``, ``message``, the record's structured fields (``extra=``: the access
log's ``method``, ``route``, ``status``, ``duration_ms``, ``identity``; an outage's
``outage``, ``state``, ``seconds``) and, for an exception, ``exc_type`` and ``traceback``.

What never reaches a line (``scrub``): SQL parameters (the engines are made with
``hide_parameters=True``; a ``[parameters: ...]`` part and PostgreSQL's ``DETAIL:`` lines,
which quote the values of a violated key, are cut anyway) and anything that looks like
key, nonce or envelope bytes (a run of 32 or more base64 characters with upper case,
lower case and digits, or 32 or more hex digits), which becomes ``<redacted>``.

Repeats are rate-limited (``RepeatFilter``): a warning or error with the same logger,
message template and exception type is written once per minute at most; the next one
written says how many were left out (``repeats_suppressed``).

``logging_config(log_file)`` is the ``logging.config.dictConfig`` of ``kyukyu hub
serve`` and ``kyukyu hospital serve``: given to uvicorn as ``log_config``, so each worker
process configures the same handlers (stderr, which journald keeps under systemd, and
``--log-file`` if given).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibJsonFormatter

__all__ = ["JsonFormatter", "RepeatFilter", "logging_config", "scrub"]

_PARAMETERS = re.compile(r"\[parameters: .*?\]\s*(?=\(Background|$)", re.DOTALL)
_DETAIL = re.compile(r"^\s*(DETAIL|HINT|CONTEXT|WHERE):.*$", re.MULTILINE)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")


def _redact(match: re.Match[str]) -> str:
    token = match.group(0)
    mixed = (
        any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    )
    if mixed or _HEX.fullmatch(token.strip("=")):
        return "<redacted>"
    return token


def scrub(text: str) -> str:
    """``text`` without SQL parameters, key-violation details and key-like tokens."""
    text = _PARAMETERS.sub("[parameters hidden] ", text)
    text = _DETAIL.sub(r"\1: <hidden>", text)
    return _TOKEN.sub(_redact, text)


class JsonFormatter(_LibJsonFormatter):
    """python-json-logger's formatter with the hub's field names and scrubbing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", _RESERVED)
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["pid"] = record.process
        log_data["message"] = scrub(record.getMessage())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                log_data[key] = scrub(value) if isinstance(value, str) else value
        for key, value in message_dict.items():
            log_data[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            log_data["exc_type"] = type(exc).__name__
            log_data["traceback"] = scrub("".join(traceback.format_exception(exc)))
        elif record.exc_text:
            log_data["traceback"] = scrub(record.exc_text)
        if record.stack_info:
            log_data["stack"] = scrub(record.stack_info)

    def formatException(self, ei: Any) -> str:
        return scrub(str(super().formatException(ei)))

    def format(self, record: logging.LogRecord) -> str:
        # The library would add exc_info as its own field: ours is ``traceback`` (scrubbed).
        saved = record.exc_info, record.exc_text
        log_data: dict[str, Any] = {}
        self.add_fields(log_data, record, {})
        record.exc_info, record.exc_text = saved
        return self.serialize_log_record(log_data)


_RESERVED = frozenset(
    {
        "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName",
        "levelname", "levelno", "lineno", "module", "msecs", "message", "msg", "name",
        "pathname", "process", "processName", "relativeCreated", "stack_info", "thread",
        "threadName", "taskName", "color_message",
    }
)  # fmt: skip


class RepeatFilter(logging.Filter):
    """Warnings and errors: the same one (logger, template, exception type) at most once
    per ``window`` seconds; the next line written carries ``repeats_suppressed``."""

    def __init__(self, window: float = 60.0, max_keys: int = 2000) -> None:
        super().__init__()
        self.window = window
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._seen: dict[tuple[Any, ...], list[float]] = {}  # key -> [last written, left out]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # One decision per record: every handler sharing this filter writes it or none.
        decided = getattr(record, "_repeat_decision", None)
        if decided is not None:
            return bool(decided)
        decision = self._decide(record)
        record._repeat_decision = decision
        return decision

    def _decide(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        key = (record.name, record.levelno, str(record.msg), type(exc).__name__ if exc else "")
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
                return False
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
            left_out = int(entry[1]) if entry is not None else 0
            self._seen[key] = [now, 0]
        if left_out:
            record.repeats_suppressed = left_out
        return True


def logging_config(log_file: str | None = None, *, level: str = "INFO") -> dict[str, Any]:
    """The ``dictConfig`` of a service's process: JSON lines on stderr and in ``log_file``."""
    handlers: dict[str, Any] = {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["repeats"],
        }
    }
    if log_file:
        handlers["file"] = {
            # Reopens the file when logrotate moved it; O_APPEND: workers share it.
            "class": "logging.handlers.WatchedFileHandler",
            "filename": log_file,
            "formatter": "json",
            "filters": ["repeats"],
            "encoding": "utf-8",
        }
    names = list(handlers)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "door.logs.JsonFormatter"}},
        "filters": {"repeats": {"()": "door.logs.RepeatFilter"}},
        "handlers": handlers,
        "root": {"level": level, "handlers": names},
        "loggers": {
            # uvicorn's own lines join the root's handlers; its access log is replaced by
            # the hub's (``hub_server.access``: route template, identity, duration).
            "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "sqlalchemy": {"level": "WARNING", "handlers": [], "propagate": True},
            # One line per request the hospital's service makes to the platform: noise.
            "httpx": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpcore": {"level": "WARNING", "handlers": [], "propagate": True},
            # SQLAlchemy's pool logs under its class's name (a line per invalidated
            # connection at INFO): as quiet as SQLAlchemy's own pool.
            "hub_server.core.db.ObservedQueuePool": {"level": "WARNING", "propagate": True},
        },
    }
