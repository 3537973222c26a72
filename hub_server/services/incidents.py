"""Mass-casualty incidents (多数傷病者, docs/mass-casualty.md).

A device declares an incident: every hospital of its region and of the regions its region
lists as neighbours gets one numbered ``incident`` event on its stream (stored: a hospital
that was offline reads it when it reconnects). Each answers how many it can take now per
START category; devices register triage tags and assign them to hospitals within those
capacities (an assignment within a declared capacity is the hospital's acceptance,
recorded ``declared_capacity``). Every change of the board is pushed to the device streams
of the region (``event: incident``, not numbered, like availability). Closing gives a tally
per hospital and category. The platform holds in clear only the incident (place, kind,
time, team), tags, categories, assignments and capacities: age, sex, injury travel only
inside the sealed case the device sends by the ordinary case path.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import insert, text, update
from sqlmodel import Session, col, select

from hub_server.core.audit import append_audit
from hub_server.core.db import utcnow
from hub_server.core.errors import Conflict, NotFound
from hub_server.core.events import (
    AVAILABILITY_CHANNEL,
    PendingEvent,
    availability_notification,
    sse_json,
)
from hub_server.core.state import HubState
from hub_server.crud import availability as regions
from hub_server.crud.events import notify
from hub_server.models import Event, Hospital, Incident, IncidentHospital, IncidentPatient

__all__ = [
    "CATEGORIES",
    "Assignment",
    "Capacity",
    "Declaration",
    "Registration",
    "answer_capacity",
    "assign",
    "board",
    "check_device_sees",
    "close",
    "declare",
    "get_incident",
    "hospital_view",
    "incidents_of_hospital",
    "incidents_of_operator",
    "register",
    "tally",
]

#: START triage categories a hospital is asked for (黒 is not transported).
CATEGORIES: tuple[str, ...] = ("red", "yellow", "green")
Category = Literal["red", "yellow", "green"]
_TAG = r"^[A-Za-z0-9-]{1,40}$"
#: Events per NOTIFY: ``[recipient, seq, kind]`` items of at most ~80 bytes each.
_NOTIFY_BATCH = 80


class Declaration(BaseModel):
    place: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=40)
    estimated_count: int = Field(ge=1, le=10_000)


class Capacity(BaseModel):
    red: int = Field(ge=0, le=1000)
    yellow: int = Field(ge=0, le=1000)
    green: int = Field(ge=0, le=1000)


class Registration(BaseModel):
    tag: str = Field(pattern=_TAG)
    category: Category


class Assignment(BaseModel):
    hospital_id: str = Field(min_length=1, max_length=40)
    case_id: str = Field(pattern=r"^case-[A-Za-z0-9_-]{1,70}$")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def get_incident(session: Session, incident_id: str, *, lock: bool = False) -> Incident:
    stmt = select(Incident).where(Incident.id == incident_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.exec(stmt).first()
    if row is None:
        raise NotFound("unknown_incident", "no such incident", "その事案はありません。")
    return row


def _open(row: Incident) -> None:
    if row.closed_at is not None:
        raise Conflict("incident_closed", "the incident is closed", "この事案は終了しています。")


def check_device_sees(session: Session, row: Incident, region: str | None) -> None:
    """A device acts on incidents of the regions whose hospitals it sees (404 otherwise)."""
    seen = regions.visible_regions(session, region)
    if seen is not None and row.region is not None and row.region not in seen:
        raise NotFound("unknown_incident", "no such incident", "その事案はありません。")


def _summary(row: Incident) -> dict[str, Any]:
    return {
        "incident_id": row.id,
        "region": row.region,
        "place": row.place,
        "kind": row.kind,
        "estimated_count": row.estimated_count,
        "team": row.team,
        "declared_at": _iso(row.declared_at),
        "closed_at": _iso(row.closed_at),
    }


def _counts(patients: list[IncidentPatient]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for p in patients:
        if p.hospital_id is not None:
            per = out.setdefault(p.hospital_id, dict.fromkeys(CATEGORIES, 0))
            per[p.category] = per.get(p.category, 0) + 1
    return out


def board(session: Session, incident_id: str) -> dict[str, Any]:
    """The distribution board: capacity declared, used and left per hospital and category,
    and which tag goes where (no patient data: there is none here)."""
    row = get_incident(session, incident_id)
    hospitals = session.exec(
        select(IncidentHospital, Hospital)
        .join(Hospital, col(Hospital.id) == col(IncidentHospital.hospital_id))
        .where(IncidentHospital.incident_id == incident_id)
        .order_by(col(Hospital.name))
    ).all()
    patients = list(
        session.exec(
            select(IncidentPatient)
            .where(IncidentPatient.incident_id == incident_id)
            .order_by(col(IncidentPatient.registered_at), col(IncidentPatient.tag))
        ).all()
    )
    used = _counts(patients)
    rows = []
    for ih, h in hospitals:
        took = used.get(h.id, dict.fromkeys(CATEGORIES, 0))
        cap = {c: getattr(ih, c) for c in CATEGORIES}
        rows.append(
            {
                "hospital_id": h.id,
                "name": h.name,
                "answered": ih.answered_at is not None,
                "capacity": cap,
                "used": took,
                "left": {
                    c: None if cap[c] is None else max(0, cap[c] - took[c]) for c in CATEGORIES
                },
            }
        )
    return {
        **_summary(row),
        "hospitals": rows,
        "patients": [
            {"tag": p.tag, "category": p.category, "hospital_id": p.hospital_id} for p in patients
        ],
    }


def _push(hub: HubState, session: Session, incident_id: str, region: str | None) -> None:
    """Commit, then push the board to the device streams of the region (like availability:
    ``EventBus.broadcast`` here, ``NOTIFY`` for the other processes)."""
    data = {"type": "incident", **board(session, incident_id)}
    sse = f"event: incident\ndata: {sse_json(data)}\n\n"
    topics = regions.availability_topics(region)
    if session.get_bind().dialect.name == "postgresql":
        payload = availability_notification(hub.bus.origin, topics, sse)
        if json.loads(payload)["x"] != sse:  # too large for NOTIFY: a notice to re-read
            short = {"type": "incident", "incident_id": incident_id, "stale": True}
            payload = availability_notification(
                hub.bus.origin, topics, f"event: incident\ndata: {sse_json(short)}\n\n"
            )
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": AVAILABILITY_CHANNEL, "payload": payload},
        )
    session.commit()
    hub.bus.broadcast(topics, sse)


def declare(
    hub: HubState,
    session: Session,
    *,
    device_id: str,
    team: str,
    region: str | None,
    body: Declaration,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Declare an incident: alert every hospital of the device's visible regions."""
    now = now or utcnow()
    row = Incident(
        id=f"inc-{secrets.token_hex(8)}",
        region=region,
        place=body.place.strip(),
        kind=body.kind.strip(),
        estimated_count=body.estimated_count,
        team=team,
        device_id=device_id,
        declared_at=now,
    )
    session.add(row)
    seen = regions.visible_regions(session, region)
    stmt = select(Hospital.id).where(col(Hospital.revoked).is_(False))
    if seen is not None:
        stmt = stmt.where(col(Hospital.region).in_(sorted(seen)))
    hospital_ids = list(session.exec(stmt).all())
    session.flush()
    session.add_all(IncidentHospital(incident_id=row.id, hospital_id=h) for h in hospital_ids)
    session.flush()
    append_audit(
        session,
        actor=f"device:{device_id}",
        action="incident_declared",
        subject=f"incident:{row.id}",
        details={"region": region, "kind": row.kind, "hospitals": len(hospital_ids)},
        now=now,
    )
    events = _events(session, hub, row, "declared", now)
    _push(hub, session, row.id, region)
    hub.bus.publish(events)
    return board(session, row.id)


def _events(
    session: Session, hub: HubState, row: Incident, state: str, now: datetime
) -> list[PendingEvent]:
    """One numbered ``incident`` event for every alerted hospital, in one statement each
    for the counters and the rows (the hospitals locked in id order, as the case path
    does: never a deadlock with it); NOTIFY in batches that fit."""
    ids = sorted(
        session.exec(
            select(IncidentHospital.hospital_id).where(IncidentHospital.incident_id == row.id)
        ).all()
    )
    if not ids:
        return []
    session.exec(
        select(Hospital.id)
        .where(col(Hospital.id).in_(ids))
        .order_by(col(Hospital.id))
        .with_for_update()
    )
    seqs = dict(
        session.execute(
            update(Hospital)
            .where(col(Hospital.id).in_(ids))
            .values(event_seq=Hospital.event_seq + 1)
            .returning(col(Hospital.id), col(Hospital.event_seq))
        ).all()
    )
    data = {**_summary(row), "state": state}
    text_data = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    session.execute(
        insert(Event),
        [
            {
                "recipient": f"hospital:{hid}",
                "seq": seqs[hid],
                "kind": "incident",
                "case_id": row.id,
                "payload": text_data,
                "created_at": now,
            }
            for hid in ids
        ],
    )
    events = [PendingEvent(f"hospital:{hid}", seqs[hid], "incident", data) for hid in ids]
    for i in range(0, len(events), _NOTIFY_BATCH):  # each NOTIFY within its 8,000 bytes
        notify(session, events[i : i + _NOTIFY_BATCH], hub.bus.origin)
    return events


def answer_capacity(
    hub: HubState,
    session: Session,
    *,
    hospital_id: str,
    incident_id: str,
    body: Capacity,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A hospital says how many it can take now per category (replaces its last answer;
    below what is already assigned it counts as full)."""
    now = now or utcnow()
    row = get_incident(session, incident_id)
    _open(row)
    ih = session.exec(
        select(IncidentHospital)
        .where(
            IncidentHospital.incident_id == incident_id,
            IncidentHospital.hospital_id == hospital_id,
        )
        .with_for_update()
    ).first()
    if ih is None:
        raise NotFound("unknown_incident", "no such incident", "その事案はありません。")
    ih.red, ih.yellow, ih.green = body.red, body.yellow, body.green
    ih.answered_at = now
    session.add(ih)
    append_audit(
        session,
        actor=f"hospital:{hospital_id}",
        action="incident_capacity",
        subject=f"incident:{incident_id}",
        details={"hospital_id": hospital_id, **body.model_dump()},
        now=now,
    )
    _push(hub, session, incident_id, row.region)
    return hospital_view(session, hospital_id, incident_id)


def register(
    hub: HubState,
    session: Session,
    *,
    device_id: str,
    region: str | None,
    incident_id: str,
    body: Registration,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Register a triage tag (its category may change until it is assigned)."""
    now = now or utcnow()
    row = get_incident(session, incident_id)
    check_device_sees(session, row, region)
    _open(row)
    p = session.get(IncidentPatient, (incident_id, body.tag))
    if p is not None and p.hospital_id is not None:
        if p.category != body.category:
            raise Conflict("tag_assigned", "the tag is assigned already", "搬送先決定済みです。")
    elif p is None:
        p = IncidentPatient(
            incident_id=incident_id,
            tag=body.tag,
            category=body.category,
            device_id=device_id,
            registered_at=now,
        )
    else:
        p.category = body.category
    session.add(p)
    append_audit(
        session,
        actor=f"device:{device_id}",
        action="incident_tag",
        subject=f"incident:{incident_id}",
        details={"tag": body.tag, "category": body.category},
        now=now,
    )
    _push(hub, session, incident_id, row.region)
    return board(session, incident_id)


def assign(
    hub: HubState,
    session: Session,
    *,
    device_id: str,
    region: str | None,
    incident_id: str,
    tag: str,
    body: Assignment,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Assign a tag to a hospital within the capacity it declared (its acceptance,
    ``declared_capacity``); the same assignment again answers the board (idempotent)."""
    now = now or utcnow()
    row = get_incident(session, incident_id, lock=True)  # one assignment at a time per incident
    check_device_sees(session, row, region)
    _open(row)
    p = session.get(IncidentPatient, (incident_id, tag))
    if p is None:
        raise NotFound("unknown_tag", "the tag is not registered", "トリアージタグが未登録です。")
    if p.hospital_id is not None:
        if p.hospital_id == body.hospital_id and p.case_id == body.case_id:
            session.rollback()
            return board(session, incident_id)
        raise Conflict("tag_assigned", "the tag is assigned already", "搬送先決定済みです。")
    ih = session.get(IncidentHospital, (incident_id, body.hospital_id))
    declared = None if ih is None else getattr(ih, p.category)
    if declared is None:
        raise Conflict(
            "no_declared_capacity",
            "the hospital has not declared a capacity for this category",
            "この病院はこの区分の受入可能数を回答していません。",
        )
    taken = session.exec(
        select(IncidentPatient.tag).where(
            IncidentPatient.incident_id == incident_id,
            IncidentPatient.hospital_id == body.hospital_id,
            IncidentPatient.category == p.category,
        )
    ).all()
    if len(taken) >= declared:
        raise Conflict(
            "capacity_exhausted",
            "the hospital's declared capacity for this category is used up",
            "この病院のこの区分の受入可能数は残っていません。",
        )
    p.hospital_id, p.case_id, p.assigned_at = body.hospital_id, body.case_id, now
    p.acceptance = "declared_capacity"
    session.add(p)
    append_audit(
        session,
        actor=f"device:{device_id}",
        action="incident_assigned",
        subject=f"incident:{incident_id}",
        details={
            "tag": tag,
            "category": p.category,
            "hospital_id": body.hospital_id,
            "case_id": body.case_id,
            "acceptance": "declared_capacity",
        },
        now=now,
    )
    _push(hub, session, incident_id, row.region)
    return board(session, incident_id)


def tally(session: Session, incident_id: str) -> list[dict[str, Any]]:
    """Patients assigned per hospital and category."""
    b = board(session, incident_id)
    return [
        {"hospital_id": h["hospital_id"], "name": h["name"], **h["used"]} for h in b["hospitals"]
    ]


def close(
    hub: HubState,
    session: Session,
    *,
    actor: str,
    incident_id: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close the incident (no more tags or assignments): its tally, audited."""
    now = now or utcnow()
    row = get_incident(session, incident_id, lock=True)
    _open(row)
    row.closed_at, row.closed_by = now, actor
    session.add(row)
    counted = tally(session, incident_id)
    append_audit(
        session,
        actor=actor,
        action="incident_closed",
        subject=f"incident:{incident_id}",
        details={"tally": counted},
        now=now,
    )
    events = _events(session, hub, row, "closed", now)
    _push(hub, session, incident_id, row.region)
    hub.bus.publish(events)
    return {**_summary(row), "tally": counted}


def hospital_view(session: Session, hospital_id: str, incident_id: str) -> dict[str, Any]:
    """What one hospital sees of an incident: the incident, its own capacity and what is
    assigned to it (its own tags only)."""
    row = get_incident(session, incident_id)
    ih = session.get(IncidentHospital, (incident_id, hospital_id))
    if ih is None:
        raise NotFound("unknown_incident", "no such incident", "その事案はありません。")
    mine = session.exec(
        select(IncidentPatient)
        .where(
            IncidentPatient.incident_id == incident_id,
            IncidentPatient.hospital_id == hospital_id,
        )
        .order_by(col(IncidentPatient.assigned_at))
    ).all()
    used = dict.fromkeys(CATEGORIES, 0)
    for p in mine:
        used[p.category] += 1
    cap = {c: getattr(ih, c) for c in CATEGORIES}
    return {
        **_summary(row),
        "answered": ih.answered_at is not None,
        "capacity": cap,
        "used": used,
        "left": {c: None if cap[c] is None else max(0, cap[c] - used[c]) for c in CATEGORIES},
        "patients": [{"tag": p.tag, "category": p.category, "case_id": p.case_id} for p in mine],
    }


def incidents_of_hospital(session: Session, hospital_id: str) -> list[dict[str, Any]]:
    ids = session.exec(
        select(IncidentHospital.incident_id)
        .join(Incident, col(Incident.id) == col(IncidentHospital.incident_id))
        .where(IncidentHospital.hospital_id == hospital_id)
        .order_by(col(Incident.declared_at).desc())
        .limit(50)
    ).all()
    return [hospital_view(session, hospital_id, i) for i in ids]


def incidents_of_operator(session: Session, *, limit: int = 200) -> list[dict[str, Any]]:
    """Every incident with its tally (counts per hospital and category): no tags."""
    rows = session.exec(select(Incident).order_by(col(Incident.declared_at).desc()).limit(limit))
    return [{**_summary(r), "tally": tally(session, r.id)} for r in rows.all()]
