"""Regions (with their neighbours) and hospitals' 応需状況: keyword-only DB functions.

A device sees the hospitals of its region, of the regions its region lists as
neighbours, and those with no region yet; a device with no region sees every hospital
(a platform that has not set regions up works as before). Availability documents are
numbered by one counter (``availability_head``), moved by an ``UPDATE ... RETURNING``
whose row lock is held to the commit: versions are committed in order, so a device
that has seen version V has seen every change up to V of its regions.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import or_, text
from sqlmodel import Session, col, select

from hub_server.core.errors import InvalidInput, NotFound
from hub_server.models import (
    Device,
    Hospital,
    HospitalAvailability,
    Region,
)

__all__ = [
    "ALL_REGIONS",
    "assign_region",
    "availability_after",
    "availability_of",
    "availability_topics",
    "availability_version",
    "check_region",
    "device_topics",
    "direct_regions",
    "regions",
    "set_region",
    "store_availability",
    "visible_regions",
]

#: The stream topic of a device with no region: every hospital's changes.
ALL_REGIONS = "region:*"


def _neighbours(row: Region | None) -> list[str]:
    if row is None:
        return []
    try:
        value = json.loads(row.neighbours)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def set_region(
    session: Session,
    *,
    code: str,
    name: str,
    neighbours: list[str],
    now: datetime,
    direct_route: bool = False,
) -> Region:
    """Create or change a region and the regions its devices also see."""
    if code in neighbours:
        raise InvalidInput("region_self_neighbour", "a region cannot neighbour itself")
    row = session.get(Region, code)
    if row is None:
        row = Region(code=code, name=name, updated_at=now)
    row.name = name
    row.neighbours = json.dumps(sorted(set(neighbours)), ensure_ascii=False)
    row.direct_route = direct_route
    row.updated_at = now
    session.add(row)
    return row


def regions(session: Session) -> list[tuple[Region, list[str]]]:
    rows = session.exec(select(Region).order_by(col(Region.code))).all()
    return [(r, _neighbours(r)) for r in rows]


def _known_region(session: Session, region: str) -> None:
    if session.get(Region, region) is None:
        raise InvalidInput(
            "unknown_region",
            f"no region {region!r}: the operator creates it first",
            "その地域は登録されていません。先に地域を登録してください。",
        )


def assign_region(session: Session, *, kind: str, ident: str, region: str | None) -> None:
    """Put a device or hospital in ``region`` (None: no region); the region must exist.
    A hospital's stored availability moves with it."""
    if region is not None:
        _known_region(session, region)
    model: type[Device] | type[Hospital] = Device if kind == "device" else Hospital
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"unknown_{kind}", f"no such {kind}")
    row.region = region
    session.add(row)
    if isinstance(row, Hospital):
        held = session.get(HospitalAvailability, ident)
        if held is not None:
            held.region = region
            session.add(held)


def check_region(session: Session, region: str | None) -> str | None:
    """``region`` if it exists (None passes): for tokens and registrations."""
    if region is not None:
        _known_region(session, region)
    return region


def direct_regions(session: Session) -> frozenset[str]:
    """The regions whose operator opted in to the direct route (docs/disaster.md)."""
    rows = session.exec(select(Region.code).where(col(Region.direct_route))).all()
    return frozenset(str(r) for r in rows)


def visible_regions(session: Session, region: str | None) -> frozenset[str] | None:
    """The regions whose hospitals a device of ``region`` sees; None: all (no region)."""
    if region is None:
        return None
    return frozenset([region, *_neighbours(session.get(Region, region))])


def device_topics(session: Session, region: str | None) -> frozenset[str]:
    """The broadcast topics of a device's event stream (``EventBus`` topics)."""
    seen = visible_regions(session, region)
    if seen is None:
        return frozenset([ALL_REGIONS])
    return frozenset(["region:", *(f"region:{r}" for r in seen)])


def availability_topics(region: str | None) -> frozenset[str]:
    """The topics a change of a hospital in ``region`` is pushed to."""
    return frozenset([ALL_REGIONS, f"region:{region or ''}"])


def availability_of(session: Session, hospital_id: str) -> HospitalAvailability | None:
    return session.get(HospitalAvailability, hospital_id)


def availability_version(session: Session) -> int:
    return int(
        session.execute(text("SELECT version FROM availability_head WHERE id = 1")).scalar_one()
    )


def store_availability(
    session: Session,
    *,
    hospital: Hospital,
    changes: dict[str, dict[str, Any] | None],
    now: datetime,
) -> HospitalAvailability:
    """Merge ``changes`` (code -> item, or None to clear it) into the hospital's document
    under the next version. The caller commits (the version's row lock is held till then)."""
    version = int(
        session.execute(
            text(
                "UPDATE availability_head SET version = version + 1 WHERE id = 1 RETURNING version"
            )
        ).scalar_one()
    )
    row = session.get(HospitalAvailability, hospital.id)
    items: dict[str, Any] = {}
    if row is not None:
        try:
            held = json.loads(row.items)
            items = held if isinstance(held, dict) else {}
        except ValueError:
            items = {}
    for code, item in changes.items():
        if item is None:
            items.pop(code, None)
        else:
            items[code] = item
    if row is None:
        row = HospitalAvailability(
            hospital_id=hospital.id,
            region=hospital.region,
            version=version,
            updated_at=now,
            items="",
        )
    row.region = hospital.region
    row.version = version
    row.updated_at = now
    row.items = json.dumps(items, ensure_ascii=False, sort_keys=True)
    session.add(row)
    return row


def availability_after(
    session: Session, *, after: int, regions: frozenset[str] | None, limit: int = 5000
) -> list[tuple[HospitalAvailability, Hospital]]:
    """Documents newer than ``after`` of the hospitals in ``regions`` (None: all) and of
    those with no region, oldest version first; revoked hospitals are left out."""
    q = (
        select(HospitalAvailability, Hospital)
        .join(Hospital, col(Hospital.id) == col(HospitalAvailability.hospital_id))
        .where(col(HospitalAvailability.version) > after, col(Hospital.revoked).is_(False))
        .order_by(col(HospitalAvailability.version))
        .limit(limit)
    )
    if regions is not None:
        q = q.where(or_(col(Hospital.region).in_(sorted(regions)), col(Hospital.region).is_(None)))
    return [(a, h) for a, h in session.exec(q).all()]
