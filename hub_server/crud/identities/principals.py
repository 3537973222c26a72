"""Who signed a request: the principal behind a key id, and the device key cache of the
hot path."""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Table, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session

from hub_server.crud.identities.keys import signing_key
from hub_server.models import Device, Hospital, Operator

__all__ = ["DeviceKeyCache", "Principal", "principal_for"]


class Principal:
    """Who signed a request: ``kind`` is device, hospital, operator or technician."""

    def __init__(self, key_id: str, kind: str, row: Device | Hospital | Operator) -> None:
        self.key_id = key_id
        self.kind = kind
        self.row = row
        # Set when the route records the nonce in its own transaction (see deps).
        self.nonce: str | None = None
        self.nonce_expires: datetime | None = None
        # The verified signing key (set by ``principal_for``).
        self.public_key: Ed25519PublicKey | None = None

    @property
    def id(self) -> str:
        return self.row.id


def _table(model: type[Device] | type[Hospital] | type[Operator]) -> Table:
    table: Table = model.__table__  # type: ignore[union-attr]
    return table


_MODELS: dict[str, type[Device] | type[Hospital] | type[Operator]] = {
    "device": Device,
    "hospital": Hospital,
    "operator": Operator,
}
_BY_ID = {
    prefix: sa_select(table).where(table.c.id == bindparam("id"))
    for prefix, table in (
        ("device", _table(Device)),
        ("hospital", _table(Hospital)),
        ("operator", _table(Operator)),
    )
}


def principal_for(
    session: Session | Connection, key_id: str
) -> tuple[Principal, Ed25519PublicKey] | None:
    """The principal and public key for ``key_id``; revoked ones are returned (caller: 403).

    One Core query (no ORM identity map): this runs for every signed request. The row is
    a detached model object.
    """
    prefix, _, ident = key_id.partition(":")
    model = _MODELS.get(prefix)
    if model is None:
        return None
    conn = session.connection() if isinstance(session, Session) else session
    found = conn.execute(_BY_ID[prefix], {"id": ident}).mappings().first()
    if found is None:
        return None
    row = model(**found)
    kind = row.role if isinstance(row, Operator) else prefix
    text = row.signing_public_key if isinstance(row, Hospital) else row.public_key
    key = signing_key(text)
    principal = Principal(key_id, kind, row)
    principal.public_key = key
    return principal, key


class DeviceKeyCache:
    """Devices' rows and public keys by key id, for the hot path of case posts (a device's
    key and fire department never change). Whether a device is revoked is never taken
    from here: the case writer reads it where it stores the case (``crud.case_batch``,
    ``revoked_devices``)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._hits: dict[str, tuple[Device, Ed25519PublicKey]] = {}

    def get(self, key_id: str) -> tuple[Principal, Ed25519PublicKey] | None:
        hit = self._hits.get(key_id)
        if hit is None:
            return None
        principal = Principal(key_id, "device", hit[0])  # its own: nonces are per request
        principal.public_key = hit[1]
        return principal, hit[1]

    def only(self, key_id: str) -> DeviceKeyCache | None:
        """A cache of this one key if it is known (else None): a caller that must do no
        I/O passes it, so that the key cannot go missing in between."""
        hit = self._hits.get(key_id)
        if hit is None:
            return None
        one = DeviceKeyCache(limit=1)
        one._hits[key_id] = hit
        return one

    def put(self, key_id: str, principal: Principal, key: Ed25519PublicKey) -> None:
        if principal.kind == "device" and isinstance(principal.row, Device):
            if len(self._hits) >= self._limit:
                self._hits.clear()
            self._hits[key_id] = (principal.row, key)
