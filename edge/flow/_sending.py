"""Hospital selection, sealing and sending, destination (搬送先決定)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sync import OutboxError, PlatformError
from sync.fhir_case import (
    CaseRecord,
    CaseTimes,
    CrewMember,
    DeviceInfo,
    build_case_bundle,
)
from sync.seal import seal_json

from . import _texts as T
from ._core import FlowCore, _notice, _vital_signs
from ._model import CHIEF_COMPLAINTS, Stage

__all__ = ["HospitalSteps"]

log = logging.getLogger("edge.flow")


class HospitalSteps(FlowCore):
    """The hospital steps of ``CaseFlow``: nearest first, send to all, live answers."""

    def to_hospitals(self) -> None:
        """Hospital selection (nearest first). Blocks on the directory when none is cached."""
        if not self._directory and not self.refresh_directory():
            self._go(Stage.VITALS, _notice(T.DIRECTORY_UNAVAILABLE))
            return
        self._go(Stage.HOSPITALS)

    def to_hospitals_view(self) -> None:
        """Back to the hospital list (after a destination, to watch the other answers)."""
        self._go(Stage.HOSPITALS)

    def toggle_hospital(self, hospital_id: str) -> None:
        with self._lock:
            sel = self._case.selected
            if hospital_id in self._case.sent:
                return
            if hospital_id in sel:
                sel.discard(hospital_id)
            else:
                sel.add(hospital_id)
        self._changed()

    def _record(self, case_id: str) -> CaseRecord:
        c = self._case
        vitals = tuple(_vital_signs(v) for v in reversed(c.vitals) if not v.is_empty())
        complaint = c.chief_complaint
        known = {t.ja: t for t in CHIEF_COMPLAINTS}
        if complaint in known:
            complaint = f"{known[complaint].ja} / {known[complaint].en}"
        d = self._device
        return CaseRecord(
            case_id=case_id,
            device=DeviceInfo(d.device_id, d.name, d.fire_department),
            times=CaseTimes(patient_contact=c.contact or datetime.now(UTC)),
            patient=c.patient,
            chief_complaint=complaint,
            vitals=vitals,
            crew=(CrewMember(d.crew_member, d.crew_role),),
            summary=c.bundle,
            # What the hospital's dashboard shows as 同意 and 本人確認.
            consent=c.consent.value if c.consent is not None else None,
            assurance=c.assurance,
        )

    def send_selected(self) -> None:
        """Seal the case for every selected hospital not yet sent to, queue it, send it."""
        with self._lock:
            c = self._case
            targets = [h for h in self._directory if h.id in c.selected and h.id not in c.sent]
        if not targets:
            self._go(Stage.HOSPITALS, _notice(T.NOTHING_SELECTED, "info"))
            return
        self._set_busy()
        case_id = f"case-{uuid.uuid4().hex}"
        try:
            sealed = seal_json(
                build_case_bundle(self._record(case_id)),
                case_id=case_id,
                device_id=self._device.device_id,
                device_key=self._device.key,
                recipients={h.id: h.hpke_public_key for h in targets},
            )
            self._outbox.enqueue(sealed)
        except OutboxError as exc:
            log.warning("case could not be queued (%s)", exc.code)
            self._go(Stage.HOSPITALS, _notice(T.OUTBOX_FULL, "error", exc.code))
            return
        with self._lock:
            for h in targets:
                c.sent[h.id] = case_id
            self._waiting = self._outbox.pending_count()
        if self._delivery is not None:
            self._delivery.kick()
        offline = self._network_ok is not True or self._platform_ok is not True
        if offline:
            # Until the platform has it: a delivery updates this to "sent".
            self._go(Stage.HOSPITALS, _notice(T.QUEUED_OFFLINE, "info", "queued"))
        else:
            self._go(Stage.HOSPITALS, _notice(T.SENT, "info", "sent"))

    def sent_case_ids(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(dict.fromkeys(self._case.sent.values()))

    def confirm_destination(self, hospital_id: str) -> None:
        """搬送先決定: the chosen hospital is told through the platform."""
        with self._lock:
            c = self._case
            case_id = c.sent.get(hospital_id)
            if case_id is None:
                return
            c.destination = hospital_id
        self._set_busy()
        try:
            self._call(self._platform.set_destination, case_id, hospital_id)
        except PlatformError:
            self._go(Stage.CONFIRMED, _notice(T.DESTINATION_NOT_SENT))
            return
        self._go(Stage.CONFIRMED)
