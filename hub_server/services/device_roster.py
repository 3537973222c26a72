"""The hub-signed device roster and device-key documents hospitals trust devices by.

The roster (``GET /v1/devices/roster``) lists every enrolled device (id, key, fire
department, revoked); a hospital keeps it for the direct route while the platform is out
(docs/disaster.md) and refuses one whose ``version`` is lower than the one it holds
(``sync.roster``: a replayed old roster cannot un-revoke a device).

How ``version`` is made::

    version = devices enrolled + devices revoked + sum of the restores' event gaps

Each enrollment and each revocation adds one; nothing the hub does takes one away, except
a restore (``kyukyu hub restore``), which takes the devices back to the backup's. The
restore therefore counts for its ``event_gap`` (default 1,000,000, far more than the
enrollments and revocations between a backup and its restore), read from the restore
markers in the audit chain (``core.audit.record_restore``: the details of each
``hub_restored`` row), so the first roster after a restore is above every roster signed
before it, exactly as the restore moves every event counter on by the same gap.

The markers are summed as they stand in this database's chain, without checking their
signatures: the roster trusts this database's device rows anyway, and a marker in the
chain means the rows went back to a backup whoever signed it. Restoring a backup older
than an earlier restore gives a chain with fewer markers again (the later restore's
marker is gone with the rows after the backup): the roster's version can then be below
one hospitals hold, and they refuse rosters until it catches up (docs/hub.md "Restore").

The sum is kept per process (``HubState.roster_gaps``) as a fold over the chain: the
head it has read up to (seq, hash) and the sum. A request reads the rows after that head
only; if the row at that seq no longer has that hash (the chain was restored or cut
under a running process), the fold starts again from the first row. So a roster costs a
primary-key range read of the rows since the last one, not a scan of the audit trail.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Connection, Table
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from hub_server.core.audit import event_gaps
from hub_server.core.db import utcnow
from hub_server.core.errors import NotFound
from hub_server.core.state import HubState
from hub_server.models import AuditEntry, AuditHead, Device
from hub_server.schemas import (
    DeviceKeyBody,
    RosterBody,
    RosterDevice,
    SignedDeviceKey,
    SignedRoster,
)

__all__ = ["RestoreGaps", "restore_gaps", "signed_device_key", "signed_roster"]

_AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]


@dataclass
class RestoreGaps:
    """The sum of the restore markers' event gaps in the chain, read up to (seq, hash)."""

    seq: int = 0
    hash: str = ""
    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, conn: Connection) -> int:
        """The sum for the chain ``conn`` sees (reading the rows after the last read only)."""
        with self._lock:
            head = conn.execute(
                sa_select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
            ).one_or_none()
            head_seq, head_hash = (0, "") if head is None else (int(head[0]), str(head[1]))
            if self.seq > 0:
                held = conn.execute(
                    sa_select(_AUDIT.c.hash).where(_AUDIT.c.seq == self.seq)
                ).scalar_one_or_none()
                if held != self.hash:
                    self.seq, self.hash, self.total = 0, "", 0  # the chain changed: again
            if head_seq > self.seq:
                self.total += event_gaps(conn, after=self.seq, upto=head_seq)
                self.seq, self.hash = head_seq, head_hash
            return self.total


def restore_gaps(hub: HubState, session: Session) -> int:
    """The sum of the event gaps of the restores in the chain (0: never restored)."""
    if hub.roster_gaps is None:
        hub.roster_gaps = RestoreGaps()
    gaps: RestoreGaps = hub.roster_gaps
    return gaps.read(session.connection())


def signed_roster(hub: HubState, session: Session) -> SignedRoster:
    """Every enrolled device, signed by the hub key; ``version`` as the module says."""
    devices = session.exec(select(Device).order_by(Device.id)).all()
    body = RosterBody(
        version=len(devices) + sum(1 for d in devices if d.revoked) + restore_gaps(hub, session),
        issued_at=utcnow().isoformat(),
        devices=[
            RosterDevice(
                id=d.id,
                public_key=d.public_key,
                fire_department=d.fire_department,
                revoked=d.revoked,
            )
            for d in devices
        ],
    )
    return SignedRoster.model_validate(
        hub.hub_key.sign_document("roster", body.model_dump(mode="json"))
    )


def signed_device_key(hub: HubState, session: Session, device_id: str) -> SignedDeviceKey:
    """One device's enrolled key, signed by the hub key; ``NotFound`` for an unknown id.

    A revoked device's key is still given (with ``revoked``): cases it sent before it
    was revoked were accepted by the hub and stay verifiable."""
    device = session.exec(select(Device).where(Device.id == device_id)).first()
    if device is None:
        raise NotFound("unknown_device", "no such device", "該当する端末がありません。")
    body = DeviceKeyBody(
        device_id=device.id,
        public_key=device.public_key,
        fire_department=device.fire_department,
        revoked=device.revoked,
        revoked_at=device.revoked_at,
        issued_at=utcnow().isoformat(),
    )
    return SignedDeviceKey.model_validate(
        hub.hub_key.sign_document("device", body.model_dump(mode="json"))
    )
