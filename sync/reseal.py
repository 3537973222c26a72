"""A case the platform refused for its envelope version: sealed again, or recorded refused.

The same holds for a case's closure (中止 / 不搬送, sealed like the case): the flow keeps
its reason in memory until the platform has it, and seals it again the same way.

Under ``KYUKYU_HUB_REQUIRE_PQ`` the platform answers a v1 case 422
``envelope_version_refused``. A device that sealed from a stale directory (the policy
or a hospital's hybrid key came later) cannot fix that by posting the same bytes again.
The sender hands such a case to a ``Resealer`` (the case flow, which alone holds the
open case in memory): it fetches the hub-signed directory again and seals the same case
for the same recipients from it, v2 where that directory allows it; the outbox swaps
the refused row for the new one under a new ``Idempotency-Key``
(``Outbox.replace_case``). When the case cannot be sealed again (it is no longer open,
the directory has not changed since it was sealed, no recipient is left) it is recorded
as refused (``Outbox.mark_refused``: dropped with what was queued after it, the reason
kept) and the resealer is told, so the crew's screen can say so.

The bound: ``ResealBook`` remembers, per open case, the directory versions it was
sealed under (memory only: after a restart no case is open, so none is sealed again),
and a case is sealed again only from a version it was not sealed under yet: at most one
automatic re-seal per directory version. A directory's version
(``directory_version``) is a digest of what sealing depends on (``require_pq`` and
each hospital's id and keys), not its issue time, which changes on every fetch.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from sync._errors import OutboxFull, PlatformError
from sync.envelope import SealedCase
from sync.seal import SealingKeys

if TYPE_CHECKING:
    from sync.outbox import Outbox, PendingCase

__all__ = [
    "VERSION_REFUSED",
    "ResealBook",
    "Resealer",
    "directory_version",
    "version_refused",
]

log = logging.getLogger("sync.reseal")

#: The platform's error code for an envelope version it does not take (422).
VERSION_REFUSED = "envelope_version_refused"


class Resealer(Protocol):
    """Who can seal a refused case again (the case flow: the case is in its memory)."""

    def reseal(self, case: PendingCase) -> bytes | SealedCase | None:
        """The same case (``case.kind`` ``case``) or closure (``closure``: its reason
        still in memory) sealed again from a freshly fetched, hub-signed directory, or
        None when it cannot be (not open any more, nothing new in the directory, no
        recipient left). Raises ``PlatformError`` when the directory could not be fetched
        (the case waits and is posted again later)."""
        ...

    def refused(self, case_id: str, kind: str = "case") -> None:
        """The case (or its ``closure``) was recorded as refused (called once the outbox
        has it)."""
        ...


def directory_version(require_pq: bool, hospitals: Iterable[tuple[str, SealingKeys]]) -> str:
    """A digest of what sealing depends on in a directory: the policy, and each
    hospital's id, X25519 key and hybrid key (order does not matter)."""
    digest = hashlib.sha256(b"require_pq" if require_pq else b"-")
    for hospital_id, keys in sorted(hospitals, key=lambda item: item[0]):
        xwing = keys.xwing.to_bytes() if keys.xwing is not None else b""
        x25519 = keys.x25519.public_bytes_raw() if keys.x25519 is not None else b""
        for part in (hospital_id.encode(), x25519, xwing):
            digest.update(len(part).to_bytes(4, "big") + part)
    return digest.hexdigest()[:32]


class ResealBook:
    """The directory versions each open case was sealed under (memory only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, set[str]] = {}

    def sealed(self, case_id: str, version: str) -> None:
        with self._lock:
            self._versions.setdefault(case_id, set()).add(version)

    def may_reseal(self, case_id: str, version: str) -> bool:
        """True if ``case_id`` was sealed before and never under ``version``."""
        with self._lock:
            seen = self._versions.get(case_id)
            return seen is not None and version not in seen

    def forget(self) -> None:
        """The patient was forgotten: none of these cases is open any more."""
        with self._lock:
            self._versions.clear()


def version_refused(outbox: Outbox, case: PendingCase, resealer: Resealer | None) -> str:
    """Handle one case (or closure: ``case.kind``) the platform refused for its envelope
    version; returns what was done: ``resealed`` (the new envelope waits, due now),
    ``refused`` (recorded, nothing more is sent for it) or ``waiting`` (the directory
    could not be fetched: the case is posted again after its backoff, and refused again,
    and then asked again)."""
    sealed: bytes | SealedCase | None = None
    if resealer is not None:
        try:
            sealed = resealer.reseal(case)
        except PlatformError as exc:
            outbox.mark_failed(case.case_id, VERSION_REFUSED, kind=case.kind)
            log.info(
                "%s refused for its envelope version; directory not fetched (%s)",
                case.kind,
                exc.code,
            )
            return "waiting"
        except Exception:  # a fault of the resealer must not keep the case forever
            log.exception("re-sealing a refused case failed")
            sealed = None
    if sealed is not None:
        try:
            outbox.replace_case(case.case_id, sealed, kind=case.kind)
        except OutboxFull:
            log.warning("re-sealed %s does not fit in the outbox", case.kind)
        else:
            log.warning("%s refused for its envelope version; sealed again", case.kind)
            return "resealed"
    outbox.mark_refused(case.case_id, case.kind, VERSION_REFUSED)
    log.warning(
        "%s refused for its envelope version and not sealed again; recorded refused", case.kind
    )
    if resealer is not None:
        try:
            resealer.refused(case.case_id, case.kind)
        except Exception:
            log.exception("telling the crew of a refused case failed")
    return "refused"
