"""SQLite: how a hub process learns of revocations made by another process.

SQLite has no notification channel. While this process has open event streams, a task
reads the audit trail's head and any revocation rows after the last one it saw (two
indexed reads every ``revocation_poll_seconds``, 0.5 s by default) and ends the streams
of each revoked identity (``EventBus.revoke``). A revocation by ``kyukyu hub revoke``
or by another hub process on the same file thus closes the streams within about the
poll interval; one made through this process's route closes them at once. PostgreSQL
uses ``NOTIFY kyukyu_revoked`` instead.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Table, bindparam, select

from hub_server.core.state import HubState
from hub_server.models import AuditEntry, AuditHead

__all__ = ["RevocationWatch"]

log = logging.getLogger("hub_server.revocation")
_AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
_ACTIONS = ("device_revoked", "hospital_revoked", "operator_revoked", "technician_revoked")
_HEAD_SEQ = select(_HEAD.c.seq).where(_HEAD.c.id == 1)
_REVOKED_SINCE = (
    select(_AUDIT.c.subject)
    .where(_AUDIT.c.seq > bindparam("after"), _AUDIT.c.seq <= bindparam("upto"))
    .where(_AUDIT.c.action.in_(_ACTIONS))
)


class RevocationWatch:
    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.seen: int | None = None

    def _head(self) -> int:
        with self.hub.engine.connect() as conn:
            return int(conn.execute(_HEAD_SEQ).scalar() or 0)

    def poll_once(self) -> list[str]:
        """Revoked key ids since the last poll (the first poll only takes its bearings)."""
        with self.hub.engine.connect() as conn:
            head = int(conn.execute(_HEAD_SEQ).scalar() or 0)
            if self.seen is None or head <= self.seen:
                self.seen = head if self.seen is None else max(self.seen, head)
                return []
            rows = conn.execute(_REVOKED_SINCE, {"after": self.seen, "upto": head}).all()
        self.seen = head
        return [str(r[0]) for r in rows]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        polls = 0
        while True:
            if polls:
                await asyncio.sleep(self.hub.settings.revocation_poll_seconds)
                if self.hub.bus.stream_count == 0:
                    continue  # nobody to tell; the rows stay until a stream is open
            polls += 1
            try:
                poll = loop.run_in_executor(None, self.poll_once)
            except RuntimeError:
                # No worker thread can start: the loop's executor is shut down, e.g. a
                # hub left serving in a daemon thread while the interpreter exits (tests,
                # the demo). The process is going away; nothing to watch for. Not an error.
                log.debug("revocation watch ends: the executor is shut down")
                return
            try:
                for key_id in await poll:
                    self.hub.bus.revoke(key_id)
            except Exception as exc:  # keep watching; the keep-alive check is the backstop
                _log_failure(exc)


def _log_failure(exc: BaseException) -> None:
    # The cause, not only its class: SQL errors here name tables and sequence numbers,
    # never patient data (the watch reads the audit trail's numbers and key ids only).
    cause = exc.__cause__ or exc.__context__
    log.warning(
        "revocation watch failed: %s: %s%s",
        type(exc).__name__,
        exc,
        f" (caused by {type(cause).__name__}: {cause})" if cause is not None else "",
    )
