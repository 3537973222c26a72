"""Hospital selection, sealing and sending, destination (搬送先決定), the closure (中止).

Everything that leaves the device goes through the outbox, in order per case: the
sealed case, then the destination (``via`` ``answer`` only for a hospital that
answered 受入可, ``phone`` after the crew's 「電話で受入確認済み」), then a closure.
The screen says 送信済み only once the platform answered 201.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from errbase import KyukyuError
from sync import OutboxError
from sync.closure import seal_closure
from sync.fhir_case import (
    CaseRecord,
    CaseTimes,
    CrewMember,
    DeviceInfo,
    Eta,
    PatientEstimate,
    Treatment,
    build_case_bundle,
)
from sync.seal import seal_json

from . import _texts as T
from ._core import FlowCore, PendingClosure, _error_notice, _notice, _vital_signs
from ._model import CHIEF_COMPLAINTS, Stage

__all__ = ["DestinationNotAccepted", "HospitalSteps"]

log = logging.getLogger("edge.flow")

# 中止 while the case is being posted: how long to wait for that post's outcome (the
# client's own timeout bounds it) before the closure is queued after the case anyway.
_INFLIGHT_WAIT_S = 30.0
# An ETA from the distance alone (no ETA keyed): the ambulance's average speed in town.
_KMH = 40.0
# What the device knew of the summary, as the case tells the hospital (its card's words).
_SUMMARY_STATUS = {"found": "found", "not_found": "not_found", "refused": "refused"}


class DestinationNotAccepted(KyukyuError):
    """搬送先に決定 on a hospital that did not answer 受入可 (declined or no answer yet)."""

    code = "not_accepted"
    message_ja = (
        "この病院は受入可と回答していません。"
        "電話で受入を確認した場合は「電話で受入確認済み」を押してください。"
    )
    message_en = (
        "This hospital has not answered accept. If it accepted by phone, use “Accepted by phone”."
    )


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
            if any(h.id == hospital_id and h.phone_only for h in self._directory):
                return  # 要電話: reachable by phone only, never a recipient
            if hospital_id in sel:
                sel.discard(hospital_id)
            else:
                sel.add(hospital_id)
        self._changed()

    def _record(self, case_id: str, targets: tuple[str, ...] = ()) -> CaseRecord:
        c = self._case
        # Empty sets and copies nothing was changed in (＋新しい測定 just tapped) are not sent.
        taken = [
            v
            for i, v in enumerate(c.vitals)
            if not v.is_empty() and (i == 0 or c.vitals[i - 1].copy_at(v.observed_at) != v)
        ]
        vitals = tuple(_vital_signs(v) for v in reversed(taken))
        complaint = c.chief_complaint
        known = {t.ja: t for t in CHIEF_COMPLAINTS}
        if complaint in known:
            complaint = f"{known[complaint].ja} / {known[complaint].en}"
        d = self._device
        now = datetime.now(UTC)
        crew = [CrewMember(d.crew_member, d.crew_role)]
        if d.team_leader:
            crew.insert(0, CrewMember("team-leader", "隊長", d.team_leader))
        times = dict(c.times)
        contact = times.pop("patient_contact", None) or c.contact or now
        if c.eta_minutes is not None:
            etas = [Eta(now + timedelta(minutes=c.eta_minutes), "crew")]
        else:
            etas = [
                Eta(now + timedelta(hours=h.distance_km / _KMH), "distance", h.id)
                for h in self._directory
                if h.id in targets and h.distance_km is not None
            ]
        status = "no_card" if not c.card_used else _SUMMARY_STATUS.get(c.summary_status or "")
        return CaseRecord(
            case_id=case_id,
            device=DeviceInfo(d.device_id, d.name, d.fire_department, d.callback_phone),
            times=CaseTimes(patient_contact=contact, **times),
            patient=c.patient,
            chief_complaint=complaint,
            chief_complaint_note=c.chief_complaint_note,
            vitals=vitals,
            crew=tuple(crew),
            summary=c.bundle,
            # What the hospital's dashboard shows as 同意 and 本人確認.
            consent=c.consent.value if c.consent is not None else None,
            assurance=c.assurance,
            summary_status=status or "unavailable",
            estimate=PatientEstimate(c.estimate_age, c.estimate_sex)
            if c.estimate_age is not None or c.estimate_sex is not None
            else None,
            heard={k: tuple(v) for k, v in c.heard.items()},
            treatments=tuple(Treatment(code, at, note) for code, at, note in c.treatments),
            eta=tuple(etas),
        )

    def send_selected(self) -> None:
        """Seal the case for every selected hospital not yet sent to, queue it, send it."""
        with self._lock:
            c = self._case
            targets = [
                h
                for h in self._directory
                if h.id in c.selected and h.id not in c.sent and not h.phone_only
            ]
            version = self._sealing_version()
            directory_version = self._directory_version
        if not targets:
            self._go(Stage.HOSPITALS, _notice(T.NOTHING_SELECTED, "info"))
            return
        self._set_busy()
        case_id = f"case-{uuid.uuid4().hex}"
        try:
            sealed = seal_json(
                build_case_bundle(self._record(case_id, tuple(h.id for h in targets))),
                case_id=case_id,
                device_id=self._device.device_id,
                device_key=self._device.key,
                recipients={h.id: h.sealing_keys for h in targets},
                version=version,
            )
            # Known before the sender can post it (a refusal asks the book).
            self._reseal_book.sealed(case_id, directory_version)
            self._outbox.enqueue(sealed)
        except OutboxError as exc:
            log.warning("case could not be queued (%s)", exc.code)
            self._go(Stage.HOSPITALS, _notice(T.OUTBOX_FULL, "error", exc.code))
            return
        with self._lock:
            for h in targets:
                c.sent[h.id] = case_id
            c.sealed_for[case_id] = {h.id: h.sealing_keys for h in targets}
            self._count_waiting()
        offline = self._network_ok is not True or self._platform_ok is not True
        # Never 送信済み here: only the platform's 201 says so (``_on_sent`` switches it).
        self._go(
            Stage.HOSPITALS, _notice(T.QUEUED_OFFLINE if offline else T.SENDING, "info", "queued")
        )
        if self._delivery is not None:
            self._delivery.kick()

    def _sealing_version(self) -> int | None:
        """2 when the platform requires post-quantum envelopes (the signed directory says
        ``require_pq``), else None: ``seal_case`` picks v2 when every recipient has a
        hybrid key, v1 otherwise."""
        return 2 if self._require_pq else None

    def sent_case_ids(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(dict.fromkeys(self._case.sent.values()))

    def confirm_destination(self, hospital_id: str, via: str = "answer") -> bool:
        """搬送先決定: queued for the platform after the case (it tells every recipient).

        ``via="answer"``: only a hospital whose answer is 受入可; otherwise the flow
        refuses (notice ``not_accepted``, ``DestinationNotAccepted``) and nothing
        changes. ``via="phone"``: the crew confirmed the acceptance by phone (any
        hospital the case was sent to). False when refused.
        """
        if via not in ("answer", "phone"):
            raise ValueError(f"unknown via {via!r}")
        with self._lock:
            c = self._case
            case_id = c.sent.get(hospital_id)
            if case_id is None:
                notice = _notice(T.NOT_SENT_THERE, code="not_sent")
            elif via == "answer" and c.answers.get(hospital_id) != "accept":
                notice = _error_notice(DestinationNotAccepted(), "warning")
            else:
                notice = None
        if case_id is None or notice is not None:
            with self._lock:
                self._notice = notice
            self._changed()
            return False
        body = json.dumps({"hospital_id": hospital_id, "via": via}).encode()
        try:
            self._outbox.enqueue_intent(case_id, "destination", body, [hospital_id])
        except OutboxError as exc:
            log.warning("destination could not be queued (%s)", exc.code)
            with self._lock:
                c.destination, c.destination_via = hospital_id, via
            self._go(Stage.CONFIRMED, _notice(T.DESTINATION_NOT_QUEUED, "error", exc.code))
            return True
        with self._lock:
            c.destination, c.destination_via = hospital_id, via
            c.destination_state = "pending"
            self._count_waiting()
        self._go(Stage.CONFIRMED, _notice(T.DESTINATION_WAITING, "info", "destination_pending"))
        if self._delivery is not None:
            self._delivery.kick()
        return True

    def _closure_recipients(
        self, sealed_for: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str], int | None]:
        """Whom a closure of a case sealed for ``sealed_for`` goes to: (their keys, the
        recipients left out, the version). Without ``require_pq``: every recipient, with
        the keys the case was sealed to (v2 when all of them have a hybrid key). With it:
        v2 to the recipients with a hybrid key (the directory's keys, or the case's when
        the directory no longer lists that hospital); the others are 要電話 and phoned."""
        if not self._require_pq:
            return dict(sealed_for), [], None
        by_id = {h.id: h for h in self._directory}
        keys: dict[str, Any] = {}
        for hospital_id, old in sealed_for.items():
            h = by_id.get(hospital_id)
            current = h.sealing_keys if h is not None else old
            if getattr(current, "xwing", None) is not None:
                keys[hospital_id] = current
        return keys, [i for i in sealed_for if i not in keys], 2

    def _queue_closures(self, reason: str) -> tuple[bool, OutboxError | None, list[str]]:
        """Seal a closure for every case of this patient and hand it to the outbox (which
        discards a case that never left). (any closure queued, an error, the hospitals
        the closure cannot reach: 要電話 under ``require_pq``, the crew phones them).

        The reason of a queued closure stays in memory (``_closures``) until the platform
        has it, so a closure refused for its envelope version can be sealed again."""
        with self._lock:
            sealed_for = dict(self._case.sealed_for)
            directory_version = self._directory_version
            self._drop_finished_closures()
        now = datetime.now(UTC)
        queued, error, phone = False, None, []
        for case_id, sent_to in sealed_for.items():
            with self._lock:
                recipients, left_out, version = self._closure_recipients(sent_to)
            if not recipients:
                phone += left_out  # every recipient is 要電話: nothing can be sealed to them
                continue
            closure = seal_closure(
                case_id=case_id,
                reason=reason,
                closed_at=now,
                device_id=self._device.device_id,
                device_key=self._device.key,
                recipients=recipients,
                version=version,
            )
            try:
                # A post of the case under way: its outcome decides (discard or close after).
                deadline = time.monotonic() + _INFLIGHT_WAIT_S
                done = self._outbox.close_case(case_id, closure)
                while done is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    done = self._outbox.close_case(case_id, closure)
                if done is None:
                    done = self._outbox.close_case(case_id, closure, force=True)
                queued = bool(done) or queued
            except OutboxError as exc:
                log.warning("closure could not be queued (%s)", exc.code)
                error = exc
                continue
            if done:  # the case had left (a case discarded here reached nobody)
                phone += left_out
                with self._lock:
                    self._closures[case_id] = PendingClosure(reason, now, dict(sent_to))
                    self._closure_book.sealed(case_id, directory_version)
        return queued, error, list(dict.fromkeys(phone))
