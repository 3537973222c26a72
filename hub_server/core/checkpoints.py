"""Signed audit checkpoints exported to an outside store, at intervals.

Every ``audit_checkpoint_seconds`` (default 300) a hub process chains the pending audit
rows, signs the head (``core.audit.signed_checkpoint``) and, when the head moved since
its last export, appends it as one JSON line to ``audit_checkpoint_file`` (opened in
append mode, flushed and fsynced) and/or sends it to ``audit_checkpoint_syslog``
(``host:port`` over UDP, or a socket path such as ``/dev/log``). The file belongs on a
store the database's writers cannot rewrite (another host, an append-only mount, a WORM
bucket); ``kyukyu hub audit verify --checkpoint FILE`` then detects truncation and
rewriting. Several processes may append to the same file (lines are short single writes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import os
from typing import Any

from hub_server.core.audit import signed_checkpoint
from hub_server.core.db import utcnow
from hub_server.core.state import HubState

__all__ = ["CheckpointExporter"]

log = logging.getLogger("hub_server.audit")


class CheckpointExporter:
    def __init__(self, state: HubState) -> None:
        self.state = state
        self.last_seq: int | None = None
        self._syslog: logging.Logger | None = None

    @property
    def enabled(self) -> bool:
        s = self.state.settings
        return s.audit_checkpoint_file is not None or s.audit_checkpoint_syslog is not None

    def export_once(self, *, force: bool = False) -> dict[str, Any] | None:
        """Sign the head and export it (unless it has not moved); the document or None."""
        state = self.state
        state.chain_audit()
        with state.engine.connect() as conn:
            doc = signed_checkpoint(conn, state.hub_key, now=utcnow())
        seq = int(doc["checkpoint"]["seq"])
        if not force and seq == self.last_seq:
            return None
        line = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        path = state.settings.audit_checkpoint_file
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        if state.settings.audit_checkpoint_syslog:
            self._syslogger().info("%s", line)
        self.last_seq = seq
        return doc

    def _syslogger(self) -> logging.Logger:
        if self._syslog is None:
            target = str(self.state.settings.audit_checkpoint_syslog)
            host, _, port = target.rpartition(":")
            address: Any = (host, int(port)) if host and port.isdigit() else target
            handler = logging.handlers.SysLogHandler(address=address)
            handler.setFormatter(logging.Formatter("kyukyu-hub-audit: %(message)s"))
            logger = logging.getLogger("hub_server.audit.checkpoints")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
            self._syslog = logger
        return self._syslog

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.export_once)
            except Exception as exc:  # keep serving; the next interval tries again
                log.warning("audit checkpoint export failed: %s", type(exc).__name__)
            await asyncio.sleep(self.state.settings.audit_checkpoint_seconds)
