"""The device's side of a mass-casualty incident (docs/mass-casualty.md).

``IncidentDesk`` declares an incident, registers triage tags, assigns them within the
hospitals' declared capacities and keeps the live distribution board (pushed on the
device's event stream as ``event: incident``, read again after a reconnection). Each
assignment seals that tag's case (``sync.incident.tag_case_record``) for the assigned
hospital and queues it in the device's ordinary outbox: the case is then sent, retried,
answered and closed exactly like any other case.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from errbase import KyukyuError
from sync import PlatformError, WrongKeyKind
from sync.fhir_case import CrewMember, DeviceInfo, build_case_bundle
from sync.incident import AGE_BANDS, CATEGORY_JA, TagPatient, tag_case_record
from sync.seal import seal_json

if TYPE_CHECKING:
    from ._flow import CaseFlow

__all__ = ["AGE_BANDS", "CATEGORY_JA", "IncidentDesk", "TagPatient", "problem_text"]

log = logging.getLogger(__name__)


class HospitalNotInDirectory(KyukyuError):
    code = "hospital_not_in_directory"
    message_ja = "この病院は端末の病院一覧にありません。電話で連絡してください。"
    message_en = "That hospital is not in the device's directory: phone it."


_PROBLEMS = {
    "capacity_exhausted": (
        "この病院のこの区分の受入可能数は残っていません。別の病院を選んでください。",
        "No capacity left there for this category: choose another hospital.",
    ),
    "no_declared_capacity": (
        "この病院はこの区分の受入可能数を回答していません。回答を待つか電話で確認してください。",
        "That hospital has not declared this category: wait for it, or phone.",
    ),
    "tag_assigned": ("このタグは搬送先決定済みです。", "This tag is assigned already."),
    "incident_closed": ("この事案は終了しています。", "The incident is closed."),
    "unknown_tag": ("先にタグを登録してください。", "Register the tag first."),
}


def problem_text(exc: Exception) -> tuple[str, str]:
    """What the crew reads when an incident call failed, and what to do next."""
    known = _PROBLEMS.get(str(getattr(exc, "hub_code", "") or ""))
    if known is not None:
        return known
    if isinstance(exc, HospitalNotInDirectory):
        return (exc.message_ja, exc.message_en)
    if isinstance(exc, PlatformError) and getattr(exc, "status", None) is None:
        return (
            "プラットフォームに接続できません。病院へは電話で連絡してください。",
            "The platform cannot be reached: phone the hospitals.",
        )
    code = getattr(exc, "code", "error")
    return (f"送れませんでした（{code}）。もう一度押してください。", f"Not sent ({code}). Retry.")


class IncidentDesk:
    """One device's incident work; the board is the platform's, ``board`` the last seen."""

    def __init__(self, flow: CaseFlow, *, clock: Callable[[], datetime] | None = None) -> None:
        from sync.incident import IncidentApi

        self._flow = flow
        self._api = IncidentApi(getattr(flow._platform, "http"))  # noqa: B009 (PlatformClient)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self.board: dict[str, Any] | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        delivery = flow._delivery
        if delivery is not None:
            delivery.on_incident = self.pushed

    @property
    def incident_id(self) -> str | None:
        b = self.board
        return None if b is None else str(b.get("incident_id"))

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _set(self, board: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.board = board
        for listener in list(self._listeners):
            try:  # a listener's failure must not reach the stream or the caller
                listener(board)
            except Exception:
                log.exception("incident board listener failed")
        return board

    def pushed(self, board: dict[str, Any]) -> None:
        """A board pushed on the stream: taken when it is this device's incident."""
        if not board.get("incident_id") or board.get("incident_id") != self.incident_id:
            return
        if "hospitals" not in board:  # a board too large to ride along: read it
            try:
                self.refresh()
            except PlatformError as exc:  # the next push or call brings it
                log.info("incident board not read (%s)", exc.code)
            return
        self._set(board)

    def declare(self, place: str, kind: str, estimated_count: int) -> dict[str, Any]:
        return self._set(self._api.declare(place, kind, estimated_count))

    def join(self, incident_id: str) -> dict[str, Any]:
        """Follow an incident another crew declared."""
        return self._set(self._api.board(incident_id))

    def refresh(self) -> dict[str, Any]:
        assert self.incident_id is not None
        return self._set(self._api.board(self.incident_id))

    def register(self, patient: TagPatient) -> dict[str, Any]:
        assert self.incident_id is not None
        return self._set(self._api.register(self.incident_id, patient.tag, patient.category))

    def assign(self, patient: TagPatient, hospital_id: str) -> str:
        """Assign a registered tag (the platform checks the declared capacity), then seal
        its case for that hospital and queue it: returns the case id. Under the platform's
        ``require_pq`` a hospital without a hybrid key (要電話) is ``WrongKeyKind`` before
        anything is recorded."""
        board = self.board
        assert board is not None
        keys = self._hospital_keys(hospital_id)
        if self._flow._require_pq and keys.xwing is None:
            # Before the platform records the assignment: its case could not be sealed.
            raise WrongKeyKind("the platform takes v2 only; this hospital has no hybrid key")
        case_id = f"case-{uuid.uuid4().hex}"
        self._set(self._api.assign(str(board["incident_id"]), patient.tag, hospital_id, case_id))
        d = self._flow._device
        crew = [CrewMember(d.crew_member, d.crew_role)]
        record = tag_case_record(
            patient,
            case_id=case_id,
            incident=board,
            device=DeviceInfo(d.device_id, d.name, d.fire_department, d.callback_phone),
            crew=crew,
            now=self._clock(),
        )
        sealed = seal_json(
            build_case_bundle(record),
            case_id=case_id,
            device_id=d.device_id,
            device_key=d.key,
            recipients={hospital_id: keys},
            version=self._flow._sealing_version(),
        )
        self._flow._outbox.enqueue(sealed)
        if self._flow._delivery is not None:
            self._flow._delivery.kick()
        log.info("incident tag assigned and its case queued")
        return case_id

    def _hospital_keys(self, hospital_id: str) -> Any:
        """The hospital's sealing keys (``SealingKeys``): from the directory stored at
        provisioning, else from the hub-signed directory read now (its signature checked by
        the client)."""
        for h in self._flow._directory:
            if h.id == hospital_id:
                return h.sealing_keys
        read = getattr(self._flow._platform, "hospital_directory")  # noqa: B009
        for h in read(*self._flow._base):
            if h.id == hospital_id:
                return h.sealing_keys
        raise HospitalNotInDirectory(hospital_id)

    def close(self) -> dict[str, Any]:
        assert self.incident_id is not None
        out = self._api.close(self.incident_id)
        return out
