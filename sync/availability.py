"""応需状況 (hospital availability) on the wire, and the device's book of it.

A hospital publishes, per department and capability (``sync.vocabulary.AVAILABILITY_ITEMS``),
可 / 不可 / 要相談 with an optional note and an expiry; the platform keeps the newest
document per hospital, numbered by one platform-wide ``version``, and pushes each change
to the devices of the regions concerned (docs/availability.md). One document::

    {"hospital_id": "...", "region": "JP-34" | null, "version": 17,
     "updated_at": "2026-...Z",
     "items": {"neurosurgery": {"status": "unavailable", "note": "手術中",
                                "expires_at": "2026-...Z", "set_at": "2026-...Z",
                                "count": null}, ...}}

Reading is forgiving per item: an unknown code or a bad item is dropped, the others are
kept (one bad field never stops a list). A status past its expiry is 不明 (``unknown``),
never 可: ``effective_status``. No patient data ever enters these documents.

``AvailabilityBook`` is the device's copy: the newest document per hospital (by its
version), the highest version seen (where a reconnecting device catches up from), and a
JSON file it is kept in so that the hospitals screen works offline from the last snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sync.vocabulary import AVAILABILITY_ITEM, COMPLAINT_NEEDS

__all__ = [
    "MAX_NOTE",
    "SET_STATUSES",
    "AvailabilityBook",
    "HospitalAvailability",
    "ItemStatus",
    "effective_status",
    "fit_rank",
    "needs_of",
    "parse_hospital_availability",
    "parse_time",
]

log = logging.getLogger("sync.availability")

#: The statuses a hospital sets (``unknown`` is what a reader derives, never set).
SET_STATUSES = ("available", "consult", "unavailable")
MAX_NOTE = 100
_MAX_COUNT = 10_000


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text, or None if it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.astimezone(UTC)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ItemStatus:
    """One department's or capability's status as the hospital set it."""

    status: str  # one of SET_STATUSES
    expires_at: datetime
    set_at: datetime
    note: str | None = None
    count: int | None = None  # ICU 空床数 only

    def json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "note": self.note,
            "expires_at": _iso(self.expires_at),
            "set_at": _iso(self.set_at),
            "count": self.count,
        }


def _item(code: str, raw: Any) -> ItemStatus | None:
    if code not in AVAILABILITY_ITEM or not isinstance(raw, Mapping):
        return None
    status = raw.get("status")
    expires, set_at = parse_time(raw.get("expires_at")), parse_time(raw.get("set_at"))
    if status not in SET_STATUSES or expires is None or set_at is None:
        return None
    note = raw.get("note")
    note = note[:MAX_NOTE] if isinstance(note, str) and note.strip() else None
    count = raw.get("count")
    if not (type(count) is int and 0 <= count <= _MAX_COUNT and AVAILABILITY_ITEM[code].counted):
        count = None
    return ItemStatus(str(status), expires, set_at, note, count)


@dataclass(frozen=True)
class HospitalAvailability:
    """The newest 応需状況 document of one hospital."""

    hospital_id: str
    version: int
    updated_at: datetime
    items: Mapping[str, ItemStatus] = field(default_factory=dict)
    region: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "hospital_id": self.hospital_id,
            "region": self.region,
            "version": self.version,
            "updated_at": _iso(self.updated_at),
            "items": {code: item.json() for code, item in self.items.items()},
        }

    def status(self, code: str, now: datetime) -> str:
        """``code``'s status now: 不明 (``unknown``) when never set or expired."""
        return effective_status(self.items.get(code), now)


def parse_hospital_availability(doc: Any) -> HospitalAvailability:
    """Read one document; ValueError when it is not one (its items are read one by one:
    a bad item is dropped, not the document)."""
    if not isinstance(doc, Mapping):
        raise ValueError("availability: not an object")
    hid, version = doc.get("hospital_id"), doc.get("version")
    updated = parse_time(doc.get("updated_at"))
    if not isinstance(hid, str) or not hid or len(hid) > 40:
        raise ValueError("availability: no hospital id")
    if type(version) is not int or version < 0 or updated is None:
        raise ValueError("availability: no version or time")
    raw_items = doc.get("items")
    items: dict[str, ItemStatus] = {}
    if isinstance(raw_items, Mapping):
        for code, raw in raw_items.items():
            item = _item(str(code), raw)
            if item is not None:
                items[str(code)] = item
    region = doc.get("region")
    return HospitalAvailability(
        hid, version, updated, items, region if isinstance(region, str) else None
    )


def effective_status(item: ItemStatus | None, now: datetime) -> str:
    """可 / 要相談 / 不可 as set while unexpired; 不明 (``unknown``) otherwise."""
    if item is None or item.expires_at <= now:
        return "unknown"
    return item.status


def needs_of(chief_complaint: str | None) -> tuple[str, ...]:
    """The item codes this 主訴 needs (``COMPLAINT_NEEDS``); () when not in the map."""
    return COMPLAINT_NEEDS.get((chief_complaint or "").strip(), ())


# Best first: every need 可; none 不可 but some 要相談; none 不可 but some 不明; some 不可.
_RANK = {"available": 0, "consult": 1, "unknown": 2, "unavailable": 3}


def fit_rank(statuses: Iterable[str]) -> int:
    """How well a hospital fits what the patient needs: the worst status among the needs
    (0 all 可, 1 要相談, 2 不明, 3 不可); 0 when nothing is needed."""
    return max((_RANK.get(s, 2) for s in statuses), default=0)


class AvailabilityBook:
    """The device's copy of its regions' 応需状況 (thread-safe), kept in a JSON file.

    ``apply`` keeps a document only if it is newer than the one held for that hospital,
    so a catch-up and a live push may overlap in any order. ``live`` says whether the
    stream is up; the screen marks statuses read from an old snapshot as such.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._docs: dict[str, HospitalAvailability] = {}
        self.version = 0
        self.live = False
        self.received_at: datetime | None = None
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("availability snapshot not read (%s)", type(exc).__name__)
            return
        if not isinstance(raw, dict):
            return
        for doc in raw.get("hospitals") or ():
            try:
                h = parse_hospital_availability(doc)
            except ValueError:
                continue
            self._docs[h.hospital_id] = h
        version = raw.get("version")
        self.version = version if type(version) is int and version >= 0 else 0
        self.received_at = parse_time(raw.get("received_at"))

    def apply(self, doc: Any, *, now: datetime | None = None) -> bool:
        """Take one document (a push or a catch-up row); True if it changed the book.
        A malformed one is dropped (logged without content)."""
        try:
            h = parse_hospital_availability(doc)
        except ValueError as exc:
            log.warning("availability document dropped (%s)", exc)
            return False
        with self._lock:
            self.received_at = now or datetime.now(UTC)
            self.version = max(self.version, h.version)
            held = self._docs.get(h.hospital_id)
            if held is not None and held.version >= h.version:
                return False
            self._docs[h.hospital_id] = h
            return True

    def apply_all(self, docs: Iterable[Any], version: int | None = None) -> int:
        """Apply a catch-up answer; ``version``: the platform's head then (nothing newer
        existed for this device). Returns how many documents changed the book."""
        changed = sum(1 for d in docs if self.apply(d))
        if type(version) is int and version >= 0:
            with self._lock:
                self.version = max(self.version, version)
        return changed

    def get(self, hospital_id: str) -> HospitalAvailability | None:
        with self._lock:
            return self._docs.get(hospital_id)

    def save(self) -> None:
        """Write the snapshot (atomically: a temporary file renamed over the old one)."""
        if self._path is None:
            return
        with self._lock:
            doc = {
                "version": self.version,
                "received_at": _iso(self.received_at),
                "hospitals": [h.json() for h in self._docs.values()],
            }
        tmp = self._path.with_suffix(".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("availability snapshot not written (%s)", type(exc).__name__)
