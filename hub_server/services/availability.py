"""Hospitals' 応需状況: a hospital sets it, devices of the regions concerned hear it.

``set_availability`` checks a hospital's change (codes of ``sync.vocabulary``, an expiry in
the future and at most ``MAX_TTL`` ahead, a count only for ICU 空床数), stores it under
the next version, audits it (statuses and expiries, never the notes' text) and, once
committed, pushes the hospital's whole document to the device streams of its region's
topic (``EventBus.broadcast``; other processes by ``NOTIFY kyukyu_availability``). A
device that was not connected catches up with ``availability_page(after=V)``.
Operational data only: no patient data is asked for or kept.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import InvalidInput
from hub_server.core.events import AVAILABILITY_CHANNEL, availability_notification, sse_json
from hub_server.core.state import HubState
from hub_server.crud import availability as crud
from hub_server.models import Hospital, HospitalAvailability
from hub_server.schemas import (
    AvailabilityDoc,
    AvailabilityPage,
    AvailabilitySet,
    RegionPublic,
    RegionSet,
)
from sync.vocabulary import AVAILABILITY_ITEM

__all__ = [
    "MAX_TTL",
    "availability_page",
    "doc_of",
    "event_text",
    "set_availability",
    "set_region",
]

#: The furthest ahead a status may expire: a hospital re-states what it can take.
MAX_TTL = timedelta(hours=72)
_PAGE = 5000
_REGION_CODE = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def doc_of(row: HospitalAvailability, name: str | None = None) -> AvailabilityDoc:
    try:
        items = json.loads(row.items)
    except ValueError:
        items = {}
    return AvailabilityDoc(
        hospital_id=row.hospital_id,
        name=name,
        region=row.region,
        version=row.version,
        updated_at=_iso(row.updated_at),
        items=items if isinstance(items, dict) else {},
    )


def event_text(doc: AvailabilityDoc) -> str:
    """The stream text of one change: ``event: availability`` with no ``id`` (it is not
    one of the device's numbered events: its position is the document's ``version``)."""
    data = {"type": "availability", **doc.model_dump(mode="json", exclude={"name"})}
    return f"event: availability\ndata: {sse_json(data)}\n\n"


def _changes(body: AvailabilitySet, now: datetime) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for item in body.items:
        known = AVAILABILITY_ITEM.get(item.code)
        if known is None:
            raise InvalidInput(
                "unknown_availability_item",
                f"{item.code!r} is not a department or capability of the vocabulary",
                "診療科・設備の名前が不明です。",
            )
        if item.code in out:
            raise InvalidInput("duplicate_availability_item", f"{item.code!r} given twice")
        if item.status == "clear":
            out[item.code] = None
            continue
        expires = item.expires_at
        if expires is None or expires.tzinfo is None or expires <= now or expires > now + MAX_TTL:
            raise InvalidInput(
                "bad_availability_expiry",
                "expires_at must be a time with its zone, in the future and at most 72 h ahead",
                "有効期限は未来の日時で、72時間以内にしてください。",
            )
        if item.count is not None and not known.counted:
            raise InvalidInput("count_not_allowed", f"{item.code!r} takes no count")
        note = item.note.strip() if item.note else None
        out[item.code] = {
            "status": item.status,
            "note": note or None,
            "expires_at": _iso(expires.astimezone(now.tzinfo)),
            "set_at": _iso(now),
            "count": item.count,
        }
    return out


def set_availability(
    hub: HubState,
    session: Session,
    *,
    hospital: Hospital,
    actor: str,
    body: AvailabilitySet,
    now: datetime | None = None,
) -> AvailabilityDoc:
    """Store a hospital's change, audit it, commit, then push it to its region."""
    now = now or utcnow()
    changes = _changes(body, now)
    row = crud.store_availability(session, hospital=hospital, changes=changes, now=now)
    append_audit(
        session,
        actor=actor,
        action="availability_set",
        subject=f"hospital:{hospital.id}",
        details={
            "version": row.version,
            "changes": {
                code: None if c is None else {"status": c["status"], "expires_at": c["expires_at"]}
                for code, c in changes.items()
            },
        },
        now=now,
    )
    doc = doc_of(row)
    sse = event_text(doc)
    topics = crud.availability_topics(hospital.region)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at the commit, to the other processes (this one hands it over below).
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {
                "channel": AVAILABILITY_CHANNEL,
                "payload": availability_notification(hub.bus.origin, topics, sse),
            },
        )
    session.commit()
    hub.bus.broadcast(topics, sse)
    return doc


def availability_page(
    session: Session, *, after: int, regions: frozenset[str] | None, named: bool = False
) -> AvailabilityPage:
    """What changed after version ``after`` for a caller who sees ``regions`` (None: all)."""
    version = crud.availability_version(session)
    rows = crud.availability_after(session, after=after, regions=regions, limit=_PAGE)
    if len(rows) == _PAGE:  # more to come: ask again from the last one given
        version = rows[-1][0].version
    return AvailabilityPage(
        version=version,
        regions=None if regions is None else sorted(regions),
        hospitals=[doc_of(a, h.name if named else None) for a, h in rows],
    )


def set_region(
    session: Session, *, code: str, body: RegionSet, actor: str, now: datetime | None = None
) -> RegionPublic:
    """Create or change a region and the regions whose hospitals its devices also see
    (the whole list: directed, see docs/availability.md); audited ``region_set`` and
    committed. ``PUT /v1/regions/{code}`` and ``kyukyu hub region set`` both call it."""
    if not _REGION_CODE.fullmatch(code):
        raise InvalidInput(
            "invalid_region_code",
            "a region code is 1-40 characters of A-Z a-z 0-9 _ . -",
            "地域コードは英数字と _ . - の40文字以内です。",
        )
    now = now or utcnow()
    neighbours = sorted(set(body.neighbours))
    row = crud.set_region(
        session,
        code=code,
        name=body.name,
        neighbours=neighbours,
        now=now,
        direct_route=body.direct_route,
    )
    append_audit(
        session,
        actor=actor,
        action="region_set",
        subject=f"region:{code}",
        details={"name": body.name, "neighbours": neighbours, "direct_route": body.direct_route},
        now=now,
    )
    session.commit()
    return RegionPublic(
        code=row.code, name=row.name, neighbours=neighbours, direct_route=row.direct_route
    )
