"""The state the case flow's steps share: the case in memory, the view, notices, bookkeeping.

``FlowCore`` holds everything; the steps live in ``_identity`` (consent and identity),
``_sending`` (hospitals, sending, destination) and ``_flow`` (``CaseFlow``: standby,
the card, the case, forgetting).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.jpki import TokenType
from edge.reader import CardWaiter, Connection
from errbase import KyukyuError
from sync import PlatformError, TransportError
from sync.availability import AvailabilityBook, fit_rank, needs_of
from sync.direct import DirectRoute, direct_hospitals
from sync.fhir_case import VerifiedPatient, VitalSigns
from sync.reseal import ResealBook, Resealer, directory_version
from sync.seal import SealingKeys

from . import _texts as T
from ._delivery import Delivery
from ._model import (
    VITAL_FIELDS,
    CaseView,
    Consent,
    EraOffer,
    HospitalRow,
    IdentityMethod,
    Notice,
    Stage,
    SummarySection,
    Text,
    VitalsDraft,
)
from ._ports import CardFacts, CardReading, CaseOutbox, Platform

__all__ = ["DeviceIdentity", "FlowCore", "PendingClosure"]

log = logging.getLogger("edge.flow")


@dataclass(frozen=True)
class DeviceIdentity:
    """Who sends: the enrolled device, its key and the crew member on duty."""

    device_id: str
    key: Ed25519PrivateKey = field(repr=False)
    name: str = "救急隊"
    fire_department: str | None = None
    crew_member: str = "隊員"
    crew_role: str = "救急救命士"
    team_leader: str | None = None  # 隊長, as the hospital sees the crew
    callback_phone: str | None = None  # the number the hospital calls back


@dataclass
class _Hospital:
    id: str
    name: str
    distance_km: float | None
    sealing_keys: SealingKeys
    # The platform requires v2 (``require_pq``) and this hospital has no hybrid key:
    # reachable by phone only (要電話), never a recipient.
    phone_only: bool = False


def _hospitals(directory: Sequence[Any]) -> tuple[list[_Hospital], bool]:
    """The signed directory's hospitals as the flow keeps them, and ``require_pq``."""
    require_pq = getattr(directory, "require_pq", False) is True
    out = []
    for h in directory:
        keys = getattr(h, "sealing_keys", None) or SealingKeys(x25519=h.hpke_public_key)
        out.append(
            _Hospital(
                h.id, h.name, h.distance_km, keys, phone_only=require_pq and keys.xwing is None
            )
        )
    return out, require_pq


@dataclass(frozen=True)
class PendingClosure:
    """A closure queued for the platform (memory only, until the platform has it): what
    sealing it again needs after the patient was forgotten. The reason is one word of
    ``CLOSURE_REASONS``; a restart loses it (the closure is then recorded refused)."""

    reason: str
    closed_at: datetime
    sealed_for: dict[str, Any]  # the case's recipients and the keys it was sealed to


@dataclass
class _Case:
    """The one open case (memory only)."""

    open: bool = False
    card_used: bool = False
    contact: datetime | None = None
    connection: Connection | None = None
    progress: list[str] = field(default_factory=list)
    token_type: str | None = None
    certificate_der: bytes | None = None
    certificate_ok: bool | None = None
    certificate_status: str | None = None
    consent: Consent | None = None
    options: tuple[IdentityMethod, ...] = ()
    pin_tries_left: int | None = None
    pin_confirm: bool = False
    collation_tries_left: int | None = None
    collation_confirm: bool = False
    era_offer: EraOffer | None = None
    assurance: str | None = None
    summary_status: str | None = None
    bundle: dict[str, Any] | None = None
    sections: tuple[SummarySection, ...] = ()
    patient: VerifiedPatient = field(default_factory=VerifiedPatient)
    chief_complaint: str | None = None
    chief_complaint_note: str | None = None
    times: dict[str, datetime] = field(default_factory=dict)  # EMS_TIMES attr -> when
    treatments: list[tuple[str, datetime, str | None]] = field(default_factory=list)
    estimate_age: int | None = None
    estimate_sex: str | None = None
    heard: dict[str, list[str]] = field(default_factory=dict)
    eta_minutes: int | None = None
    vitals: list[VitalsDraft] = field(default_factory=list)  # in the order taken
    vitals_selected: int = -1  # index into vitals of the set being edited (-1: the newest)
    selected: set[str] = field(default_factory=set)
    sent: dict[str, str] = field(default_factory=dict)  # hospital id -> case id
    # case id -> the recipients' public keys it was sealed for (a closure goes to them)
    sealed_for: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)  # case ids the platform has (201)
    # case ids the platform refused for good (envelope version, not sealed again)
    refused: set[str] = field(default_factory=set)
    answers: dict[str, str] = field(default_factory=dict)  # received | accept | decline
    reasons: dict[str, str] = field(default_factory=dict)  # a decline's reason
    routes: dict[str, str] = field(default_factory=dict)  # hospital id -> platform | direct
    destination: str | None = None
    destination_via: str | None = None
    destination_state: str | None = None


def _answer(raw: str | None) -> str | None:
    """The hospital's answer (accept / decline); a receipt alone is not one."""
    return raw if raw in ("accept", "decline") else None


def _vital_signs(draft: VitalsDraft) -> VitalSigns:
    """One set as the hospital receives it (``VitalField.attr`` names each value)."""
    values: dict[str, Any] = {f.attr: draft.value(f.key) for f in VITAL_FIELDS}
    for f in VITAL_FIELDS:
        if f.ucum == "{score}" and values[f.attr] is not None:
            values[f.attr] = int(values[f.attr])  # GCS E, V, M are whole scores
    return VitalSigns(observed_at=draft.observed_at or datetime.now(UTC), **values)


def _options(token_type: str) -> tuple[IdentityMethod, ...]:
    if token_type == TokenType.ANDROID:
        return (IdentityMethod.PIN,)
    if token_type == TokenType.IPHONE:
        return (IdentityMethod.FACE, IdentityMethod.PIN)
    return (IdentityMethod.FACE, IdentityMethod.PIN, IdentityMethod.COLLATION_B)


def _notice(text: Text, level: str = "warning", code: str = "", **fmt: str) -> Notice:
    if fmt:
        text = Text(text.ja.format(**fmt), text.en.format(**fmt))
    return Notice(text, level, code)


def _error_notice(exc: KyukyuError, level: str = "error") -> Notice:
    return Notice(Text(exc.message_ja, exc.message_en), level, exc.code)


class FlowCore:
    """The case in memory, its view and the platform bookkeeping."""

    def __init__(
        self,
        *,
        cards: CardWaiter | None,
        card_reading: CardReading,
        platform: Platform,
        outbox: CaseOutbox,
        device: DeviceIdentity,
        base: tuple[float, float] = (35.6812, 139.7671),
        background: bool = True,
        closers: list[Callable[[], None]] | None = None,
        directory: Sequence[Any] = (),
        removal_marker: Path | None = None,
        availability: AvailabilityBook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        direct: DirectRoute | None = None,
    ) -> None:
        self._closers = list(closers or ())
        # The direct route when the platform is cut off (docs/disaster.md); its hospitals
        # follow the signed directory.
        self._direct = direct
        self._cards = cards
        self._reading = card_reading
        self._platform = platform
        self._outbox = outbox
        self._device = device
        self._base = base
        self._lock = threading.RLock()
        self._stage = Stage.STANDBY
        self._case = _Case()
        self._notice: Notice | None = None
        self._busy = False
        self._listeners: list[Callable[[CaseView], None]] = []
        # The hub-signed directory stored at provisioning: hospitals work offline from boot.
        self._set_directory(directory)
        # The directory versions each open case was sealed under (sync.reseal).
        self._reseal_book = ResealBook()
        # Closures waiting for the platform (case id -> reason, time, recipients) and the
        # directory versions each was sealed under: they outlive the patient's case.
        self._closures: dict[str, PendingClosure] = {}
        self._closure_book = ResealBook()
        self._cancel_wait: threading.Event | None = None
        # A case that used a card ended: that card may still lie on the reader, and is not
        # a new tap until it was taken away. The marker (an empty file) keeps this across
        # processes: each browser session of the kiosk is a new one.
        self._removal_marker = removal_marker
        self._await_removal = removal_marker is not None and removal_marker.exists()
        # Waited for it to leave and it has not: standby says so.
        self._card_left = False
        self._reader_ok: bool | None = None
        self._network_ok: bool | None = None
        self._platform_ok: bool | None = None
        self._waiting = 0
        self._waiting_by_kind: tuple[tuple[str, int], ...] = ()
        self._count_waiting()
        # 応需状況 of the hospitals of this device's regions (its last snapshot until the
        # stream is up); ``clock`` decides what has expired (不明).
        self._availability = availability if availability is not None else AvailabilityBook()
        self._clock = clock
        self._order: tuple[str, ...] = ()  # the hospitals' order, kept once one is picked
        self._delivery: Delivery | None = None
        if background:
            self._delivery = Delivery(
                outbox,
                platform,
                on_sent=self._on_sent,
                on_answer=self._on_answer,
                availability=self._availability,
                on_availability=self._changed,
                direct=direct,
                resealer=self._resealer(),
            )

    def _resealer(self) -> Resealer | None:
        """Who seals a case again when the platform refuses its envelope version
        (``_reseal.ResealSteps``); None: such a case is recorded refused."""
        return None

    def _set_directory(self, directory: Sequence[Any]) -> None:
        self._directory, self._require_pq = _hospitals(directory)
        self._directory_version = directory_version(
            self._require_pq, ((h.id, h.sealing_keys) for h in self._directory)
        )

    def _count_waiting(self) -> None:
        """What waits in the outbox, in all and per kind (the status bar)."""
        kinds = self._outbox.pending_by_kind()
        self._waiting = sum(kinds.values())
        self._waiting_by_kind = tuple(
            (k, kinds[k]) for k in ("case", "destination", "closure") if k in kinds
        )

    def start(self) -> None:
        """Start sending waiting cases and following answers (background threads)."""
        if self._delivery is not None:
            self._delivery.start()
            self._delivery.kick()

    def subscribe(self, listener: Callable[[CaseView], None]) -> None:
        self._listeners.append(listener)

    # -- the view ---------------------------------------------------------------------

    def _ordered(self, rows: tuple[HospitalRow, ...], frozen: bool) -> tuple[HospitalRow, ...]:
        """By fit, then availability, then distance (``sync.availability.fit_rank``);
        once a hospital is picked or sent the order stays (no row moves under a finger)."""
        by_id = {r.id: r for r in rows}
        if frozen and self._order and set(self._order) == set(by_id):
            return tuple(by_id[i] for i in self._order)
        ranked = sorted(
            rows,
            key=lambda r: (
                r.fit,
                sum(1 for _, s in r.availability if s != "available"),
                r.distance_km if r.distance_km is not None else float("inf"),
            ),
        )
        self._order = tuple(r.id for r in ranked)
        return tuple(ranked)

    def _availability_of(
        self, hospital_id: str, needs: tuple[str, ...], now: datetime
    ) -> tuple[tuple[tuple[str, str], ...], float | None, int]:
        doc = self._availability.get(hospital_id)
        statuses = tuple((code, doc.status(code, now) if doc else "unknown") for code in needs)
        age = None if doc is None else max(0.0, (now - doc.updated_at).total_seconds())
        return statuses, age, fit_rank(s for _, s in statuses)

    def standing_by(self) -> tuple[bool, bool | None]:
        """(whether the flow stands by for a card, whether its reader works): what the
        card watcher asks twenty times a second, without building a whole view (under a
        Pi-class CPU a view costs milliseconds: every hospital's 応需状況, the record)."""
        with self._lock:
            return self._stage is Stage.STANDBY, self._reader_ok

    def view(self) -> CaseView:
        with self._lock:
            c = self._case
            now = self._clock()
            needs = needs_of(c.chief_complaint)
            rows = tuple(
                HospitalRow(
                    id=h.id,
                    name=h.name,
                    distance_km=h.distance_km,
                    selected=h.id in c.selected,
                    sent=h.id in c.sent,
                    answer=_answer(c.answers.get(h.id)),
                    delivery=(
                        None
                        if h.id not in c.sent
                        else "received"
                        if c.answers.get(h.id) == "received"
                        else "refused"
                        if c.sent[h.id] in c.refused
                        else "sent"
                        if c.sent[h.id] in c.delivered
                        else "queued"
                    ),
                    reason=c.reasons.get(h.id),
                    route=c.routes.get(h.id) if h.id in c.sent else None,
                    on_platform=h.id in c.sent and c.sent[h.id] in c.delivered,
                    phone_only=h.phone_only and h.id not in c.sent,
                    availability=statuses,
                    availability_age_s=age,
                    fit=fit,
                )
                for h in self._directory
                for statuses, age, fit in (self._availability_of(h.id, needs, now),)
            )
            rows = self._ordered(rows, frozen=bool(c.selected or c.sent))
            label = None
            if c.patient.name:
                born = c.patient.birth_date
                label = c.patient.name + (f"（{born:%Y/%m/%d}生）" if born else "")
            return CaseView(
                stage=self._stage,
                case_open=c.open,
                card_used=c.card_used,
                progress=tuple(c.progress),
                token_type=c.token_type,
                identity_options=c.options,
                pin_tries_left=c.pin_tries_left,
                pin_needs_confirmation=c.pin_confirm,
                collation_b_tries_left=c.collation_tries_left,
                collation_b_needs_confirmation=c.collation_confirm,
                era_offer=c.era_offer,
                consent=c.consent,
                assurance=c.assurance,
                certificate_ok=c.certificate_ok,
                certificate_status=c.certificate_status,
                summary_status=c.summary_status,
                summary=c.sections,
                patient_label=label,
                chief_complaint=c.chief_complaint,
                chief_complaint_note=c.chief_complaint_note,
                times=tuple(c.times.items()),
                treatments=tuple(c.treatments),
                estimate_age=c.estimate_age,
                estimate_sex=c.estimate_sex,
                heard=tuple((k, tuple(v)) for k, v in c.heard.items()),
                eta_minutes=c.eta_minutes,
                vitals=tuple(reversed(c.vitals)),
                vitals_selected=(c.vitals_selected % len(c.vitals)) + 1 if c.vitals else None,
                hospitals=rows,
                destination=c.destination,
                destination_via=c.destination_via,
                destination_state=c.destination_state,
                notice=self._notice,
                busy=self._busy,
                reader_ok=self._reader_ok,
                card_left_on_reader=self._card_left and self._stage is Stage.STANDBY,
                network_ok=self._network_ok,
                platform_ok=self._platform_ok,
                waiting_sealed=self._waiting,
                waiting_by_kind=self._waiting_by_kind,
                availability_live=self._availability.live,
                availability_needs=needs,
            )

    def _changed(self) -> None:
        view = self.view()
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:  # a listener's bug must not break the case
                log.exception("flow listener failed")

    def _go(self, stage: Stage, notice: Notice | None = None) -> None:
        with self._lock:
            self._stage = stage
            self._notice = notice
            self._busy = False
        self._changed()

    def _set_busy(self) -> None:
        with self._lock:
            self._busy = True
            self._notice = None
        self._changed()

    # -- platform bookkeeping ---------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            out = fn(*args, **kwargs)
        except TransportError:
            self._network_ok, self._platform_ok = False, False
            raise
        except PlatformError:
            self._network_ok, self._platform_ok = True, False
            raise
        self._network_ok, self._platform_ok = True, True
        return out

    def _drop_finished_closures(self) -> None:
        """Forget the reason of each closure the platform has (or refused): it is kept in
        memory only while the closure may have to be sealed again."""
        for case_id in list(self._closures):
            if self._outbox.intent_state(case_id, "closure") != "pending":
                del self._closures[case_id]

    def _on_sent(self, ok: bool) -> None:
        self._network_ok = self._platform_ok = ok
        with self._lock:
            self._count_waiting()
            self._read_outbox()
            self._drop_finished_closures()
            c = self._case
            sent_all = bool(c.sent) and all(cid in c.delivered for cid in c.sent.values())
            code = self._notice.code if self._notice is not None else ""
            # 送信済み only once the platform answered 201 for every case of this patient.
            if code == "queued" and sent_all:
                self._notice = _notice(T.SENT, "info", "sent")
            if code == "destination_pending" and c.destination_state == "delivered":
                self._notice = _notice(T.DESTINATION_SENT, "info", "destination_sent")
            elif code == "destination_pending" and (c.destination_state or "").startswith(
                "refused"
            ):
                why = (c.destination_state or "").partition(":")[2]
                self._notice = _notice(
                    T.DESTINATION_REFUSED, "error", "destination_refused", why=why
                )
        self._changed()

    def _read_outbox(self) -> None:
        """What the outbox knows of this patient's cases: 201s, receipts, answers, reasons,
        the destination's delivery (non-personal statuses only)."""
        c = self._case
        for case_id in set(c.sent.values()):
            status = self._outbox.status(case_id)
            if status is None:
                continue
            if status.delivered_at is not None:
                c.delivered.add(case_id)
            elif (self._outbox.intent_state(case_id, "case") or "").startswith("refused"):
                c.refused.add(case_id)
            # Which way it reached each hospital: directly (that hospital got it by the
            # direct route), else through the platform once the platform has it.
            got: frozenset[str] = getattr(status, "direct_to", frozenset())
            for hid, cid in c.sent.items():
                if cid != case_id:
                    continue
                if hid in got:
                    c.routes[hid] = "direct"
                elif status.delivered_at is not None:
                    c.routes[hid] = "platform"
                if hid in status.answers:
                    c.answers[hid] = status.answers[hid]
                    if hid in status.reasons:
                        c.reasons[hid] = status.reasons[hid]
        if c.destination is not None and c.destination in c.sent:
            c.destination_state = self._outbox.intent_state(c.sent[c.destination], "destination")

    def _on_answer(self) -> None:
        with self._lock:
            c = self._case
            self._read_outbox()
            if (
                self._stage is Stage.HOSPITALS
                and c.sent
                and all(c.answers.get(h) == "decline" for h in c.sent)
            ):
                self._notice = _notice(T.ALL_DECLINED)
        # Network flags stay with the calls that just succeeded or failed: an answer read
        # from the stream a moment ago says nothing about the network now (setting them
        # here let a late answer mark a dead platform reachable, and "sent" be claimed).
        self._changed()

    def refresh_directory(self) -> bool:
        """Fetch the signed hospital directory (nearest first). Blocks; False if unreachable."""
        try:
            self._fetch_directory()
        except PlatformError:
            self._changed()
            return False
        return True

    def _fetch_directory(self) -> None:
        """``refresh_directory`` that raises the platform's error (``PlatformError``)."""
        hospitals = self._call(self._platform.hospital_directory, *self._base)
        with self._lock:
            self._set_directory(hospitals)
            # A hospital that became phone only (要電話) is no longer a choice.
            self._case.selected -= {h.id for h in self._directory if h.phone_only}
            if self._direct is not None:
                self._direct.set_hospitals(direct_hospitals(hospitals))
        self._changed()

    def _open_case(self) -> None:
        c = self._case
        if not c.open:
            c.open = True
            c.contact = datetime.now(UTC)

    def _step_of(self, case: _Case) -> Callable[[str], None]:
        """``_step`` for a read of ``case``: a step read after the case was ended (中止
        while the card was being read) is not shown on the next case."""

        def step(name: str) -> None:
            with self._lock:
                if self._case is not case:
                    return
                case.progress.append(name)
            self._changed()

        return step

    def _drop_connection(self) -> None:
        conn, self._case.connection = self._case.connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing the card connection failed", exc_info=True)

    def _take_facts(self, facts: CardFacts) -> None:
        with self._lock:
            c = self._case
            c.token_type = facts.token_type
            c.options = _options(facts.token_type)
            if facts.certificate_der is not None:
                c.certificate_der = facts.certificate_der
            c.certificate_ok = facts.certificate_ok
            if facts.certificate_status is not None:
                c.certificate_status = facts.certificate_status
            if facts.attributes is not None:
                a = facts.attributes
                c.patient = VerifiedPatient(a.name, a.birth_date, a.sex, a.address)  # type: ignore[arg-type]

    def _card_problem(self, notice: Notice) -> None:
        with self._lock:
            self._drop_connection()
        self._go(Stage.CARD_PROBLEM, notice)
