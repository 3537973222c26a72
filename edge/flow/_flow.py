"""The case flow: one patient case as a state machine, with no UI code.

Intents are plain methods. Those that talk to the card or the platform block
(``wait_for_card``, ``choose_consent``, ``choose_identity``, ``submit_pin``,
``submit_collation_b``, ``to_hospitals``, ``send_selected``,
``confirm_destination``): the UI calls them from a worker thread; tests call
them directly. Every change is pushed to the subscribers as a fresh
``CaseView``. Patient data lives in this object's memory only and is dropped by
``forget`` (done, idle timeout); only sealed envelopes reach the disk.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.jpki import (
    InvalidCollationNumber,
    JpkiError,
    LastTryNeedsConfirmation,
    PinBlocked,
    PinError,
    PinRequired,
    TokenType,
    WrongPin,
)
from edge.reader import Cancelled, CardRemoved, CardWaiter, Connection, NoCard, ReaderError
from errbase import KyukyuError
from sync import OutboxError, PlatformError, TransportError
from sync.fhir_case import (
    CaseRecord,
    CaseTimes,
    CrewMember,
    DeviceInfo,
    VerifiedPatient,
    VitalSigns,
    build_case_bundle,
)
from sync.seal import seal_json

from . import _texts as T
from ._delivery import Delivery
from ._model import (
    CHIEF_COMPLAINTS,
    PLAUSIBLE,
    CaseView,
    Consent,
    HospitalRow,
    IdentityMethod,
    Notice,
    Stage,
    SummarySection,
    Text,
    VitalsDraft,
)
from ._ports import CardFacts, CardReading, CardRequest, CaseOutbox, Platform
from ._summary import summary_sections

__all__ = ["CaseFlow", "DeviceIdentity"]

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


@dataclass
class _Hospital:
    id: str
    name: str
    distance_km: float | None
    hpke_public_key: Any


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
    consent: Consent | None = None
    options: tuple[IdentityMethod, ...] = ()
    pin_tries_left: int | None = None
    pin_confirm: bool = False
    assurance: str | None = None
    summary_status: str | None = None
    bundle: dict[str, Any] | None = None
    sections: tuple[SummarySection, ...] = ()
    patient: VerifiedPatient = field(default_factory=VerifiedPatient)
    chief_complaint: str | None = None
    vitals: list[VitalsDraft] = field(default_factory=list)
    selected: set[str] = field(default_factory=set)
    sent: dict[str, str] = field(default_factory=dict)  # hospital id -> case id
    answers: dict[str, str] = field(default_factory=dict)
    destination: str | None = None


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


class CaseFlow:
    """One device's case flow: standby → card → consent → identity → summary → vitals →
    hospitals → destination → done (forget)."""

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
    ) -> None:
        self._closers = list(closers or ())
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
        self._directory: list[_Hospital] = []
        self._cancel_wait: threading.Event | None = None
        self._await_removal = False
        self._reader_ok: bool | None = None
        self._network_ok: bool | None = None
        self._platform_ok: bool | None = None
        self._waiting = outbox.pending_count()
        self._delivery: Delivery | None = None
        if background:
            self._delivery = Delivery(
                outbox, platform, on_sent=self._on_sent, on_answer=self._on_answer
            )

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Start sending waiting cases and following answers (background threads)."""
        if self._delivery is not None:
            self._delivery.start()
            self._delivery.kick()

    def close(self) -> None:
        self.cancel_wait()
        self.forget()
        if self._delivery is not None:
            self._delivery.close()
        for close in self._closers:
            try:
                close()
            except Exception:
                log.debug("closing a part of the flow failed", exc_info=True)

    def subscribe(self, listener: Callable[[CaseView], None]) -> None:
        self._listeners.append(listener)

    # -- the view ---------------------------------------------------------------------

    def view(self) -> CaseView:
        with self._lock:
            c = self._case
            rows = tuple(
                HospitalRow(
                    id=h.id,
                    name=h.name,
                    distance_km=h.distance_km,
                    selected=h.id in c.selected,
                    sent=h.id in c.sent,
                    answer=c.answers.get(h.id),
                )
                for h in self._directory
            )
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
                consent=c.consent,
                assurance=c.assurance,
                certificate_ok=c.certificate_ok,
                summary_status=c.summary_status,
                summary=c.sections,
                patient_label=label,
                chief_complaint=c.chief_complaint,
                vitals=tuple(reversed(c.vitals)),
                hospitals=rows,
                destination=c.destination,
                notice=self._notice,
                busy=self._busy,
                reader_ok=self._reader_ok,
                network_ok=self._network_ok,
                platform_ok=self._platform_ok,
                waiting_sealed=self._waiting,
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

    def _on_sent(self, ok: bool) -> None:
        self._network_ok = self._platform_ok = ok
        self._waiting = self._outbox.pending_count()
        self._changed()

    def _on_answer(self) -> None:
        with self._lock:
            c = self._case
            for hid, case_id in c.sent.items():
                status = self._outbox.status(case_id)
                if status is not None and hid in status.answers:
                    c.answers[hid] = status.answers[hid]
            if (
                self._stage is Stage.HOSPITALS
                and c.sent
                and all(c.answers.get(h) == "decline" for h in c.sent)
            ):
                self._notice = _notice(T.ALL_DECLINED)
        self._network_ok = self._platform_ok = True
        self._changed()

    def refresh_directory(self) -> bool:
        """Fetch the signed hospital directory (nearest first). Blocks; False if unreachable."""
        try:
            hospitals = self._call(self._platform.hospital_directory, *self._base)
        except PlatformError:
            self._changed()
            return False
        with self._lock:
            self._directory = [
                _Hospital(h.id, h.name, h.distance_km, h.hpke_public_key) for h in hospitals
            ]
        self._changed()
        return True

    # -- standby and the card ---------------------------------------------------------

    def wait_for_card(self, timeout: float | None = None) -> bool:
        """Block until a card or phone is tapped, then read it. False: cancelled, timed out,
        no reader, or the flow left standby meanwhile."""
        if self._cards is None:
            self._reader_ok = False
            self._changed()
            return False
        cancel = threading.Event()
        with self._lock:
            if self._stage is not Stage.STANDBY:
                return False
            self._cancel_wait = cancel
        try:
            if self._await_removal:
                # The last case's card may still lie on the reader: not a new tap.
                self._cards.wait_for_removal(timeout=timeout, cancel=cancel)
                self._await_removal = False
            conn = self._cards.wait_for_card(timeout=timeout, cancel=cancel)
        except (Cancelled, NoCard):
            return False
        except ReaderError as exc:
            self._reader_ok = False
            with self._lock:
                self._notice = _error_notice(exc)
            self._changed()
            return False
        self._reader_ok = True
        with self._lock:
            if self._stage is not Stage.STANDBY or cancel.is_set():
                conn.close()
                return False
            self._cancel_wait = None
        self._read_new_card(conn)
        return True

    def cancel_wait(self) -> None:
        with self._lock:
            cancel, self._cancel_wait = self._cancel_wait, None
        if cancel is not None:
            cancel.set()
            if self._cards is not None:
                self._cards.cancel()

    def _open_case(self) -> None:
        c = self._case
        if not c.open:
            c.open = True
            c.contact = datetime.now(UTC)

    def _step(self, name: str) -> None:
        with self._lock:
            self._case.progress.append(name)
        self._changed()

    def _drop_connection(self) -> None:
        conn, self._case.connection = self._case.connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing the card connection failed", exc_info=True)

    def _read_new_card(self, conn: Connection) -> None:
        with self._lock:
            self._drop_connection()
            self._open_case()
            c = self._case
            c.card_used = True
            c.connection = conn
            c.progress = []
            self._stage = Stage.READING
            self._notice = None
        self._changed()
        try:
            facts = self._reading.read(conn, CardRequest(), on_step=self._step)
        except PinRequired:
            # Only an Android token hides its certificate behind the PIN.
            with self._lock:
                c.token_type = TokenType.ANDROID
                c.options = _options(TokenType.ANDROID)
            self._after_read(_notice(T.PHONE_NEEDS_PIN, "info"))
            return
        except CardRemoved:
            self._card_problem(_notice(T.CARD_REMOVED, code="card_removed"))
            return
        except (JpkiError, ReaderError) as exc:
            self._card_problem(_error_notice(exc))
            return
        self._take_facts(facts)
        if not facts.certificate_ok:
            problem = facts.certificate_problem
            text = problem.message_ja if isinstance(problem, KyukyuError) else ""
            text_en = problem.message_en if isinstance(problem, KyukyuError) else ""
            with self._lock:
                c.summary_status = "none"
            self._go(
                Stage.VITALS,
                Notice(
                    Text(
                        T.CERT_PROBLEM.ja.format(problem=text),
                        T.CERT_PROBLEM.en.format(problem=text_en),
                    ),
                    "warning",
                    getattr(problem, "code", "certificate"),
                ),
            )
            return
        self._after_read(None)

    def _take_facts(self, facts: CardFacts) -> None:
        with self._lock:
            c = self._case
            c.token_type = facts.token_type
            c.options = _options(facts.token_type)
            if facts.certificate_der is not None:
                c.certificate_der = facts.certificate_der
            c.certificate_ok = facts.certificate_ok
            if facts.attributes is not None:
                a = facts.attributes
                c.patient = VerifiedPatient(a.name, a.birth_date, a.sex, a.address)  # type: ignore[arg-type]

    def _after_read(self, notice: Notice | None) -> None:
        # Re-tapped after a removal: consent already given goes straight back to identity.
        c = self._case
        if c.consent is Consent.CONSENTED:
            self._go(Stage.PIN if c.token_type == TokenType.ANDROID else Stage.IDENTITY, notice)
        else:
            self._go(Stage.CONSENT, notice)

    def _card_problem(self, notice: Notice) -> None:
        with self._lock:
            self._drop_connection()
        self._go(Stage.CARD_PROBLEM, notice)

    def retap(self) -> None:
        """After a card problem (or to take a card later in the case): wait for a tap."""
        with self._lock:
            self._drop_connection()
        self._go(Stage.STANDBY)

    def start_without_card(self) -> None:
        """No card: the case starts at chief complaint and vitals."""
        self.cancel_wait()
        with self._lock:
            self._open_case()
        self._go(Stage.VITALS)

    def take_card(self) -> None:
        """In a case without (or before) a card: wait for a tap now."""
        self.retap()

    def back_to_case(self) -> None:
        """From standby within an open case, or a card problem: back to the vitals."""
        self.cancel_wait()
        with self._lock:
            if not self._case.open:
                return
            self._drop_connection()
        self._go(Stage.VITALS)

    # -- consent and identity ---------------------------------------------------------

    def choose_consent(self, consent: Consent) -> None:
        with self._lock:
            c = self._case
            c.consent = consent
            android = c.token_type == TokenType.ANDROID
        if consent is Consent.REFUSED:
            self._set_busy()
            if c.certificate_der is not None:
                # Recorded for the audit trail; nothing comes back.
                self._lookup({"kind": "face_check"}, show=False)
            with self._lock:
                c.summary_status = "refused"
            self._go(Stage.VITALS, _notice(T.REFUSED, "info"))
        elif consent is Consent.UNCONSCIOUS:
            if android:
                with self._lock:
                    c.summary_status = "none"
                self._go(Stage.VITALS, _notice(T.PHONE_UNCONSCIOUS))
                return
            # The one touch carries the face check: an unconscious patient cannot key a PIN.
            self._lookup({"kind": "face_check"})
        else:
            self._go(Stage.PIN if android else Stage.IDENTITY)

    def choose_identity(self, method: IdentityMethod) -> None:
        if method is IdentityMethod.FACE:
            self._lookup({"kind": "face_check"})
        elif method is IdentityMethod.PIN:
            self._go(Stage.PIN)
        else:
            self._go(Stage.COLLATION_B)

    def cancel_identity(self) -> None:
        with self._lock:
            self._case.pin_confirm = False
            android = self._case.token_type == TokenType.ANDROID
        self._go(Stage.CONSENT if android else Stage.IDENTITY)

    def _reconnect_or_fail(self) -> Connection | None:
        conn = self._case.connection
        if conn is None:
            self._card_problem(_notice(T.CARD_REMOVED, code="card_removed"))
        return conn

    def submit_pin(
        self, pin: str, *, confirm_last_try: bool = False, collation_b: str | None = None
    ) -> None:
        """The PIN proof: the card signs the platform's challenge; then the summary.

        With ``collation_b`` (照合番号B keyed too) the same read also opens and verifies
        the four attributes: the strongest identity the card offers.
        """
        c = self._case
        conn = self._reconnect_or_fail()
        if conn is None:
            return
        self._set_busy()
        try:
            challenge = self._call(self._platform.create_challenge)
            nonce = base64.urlsafe_b64decode(
                challenge["nonce"] + "=" * (-len(challenge["nonce"]) % 4)
            )
        except (PlatformError, KeyError, ValueError):
            if c.token_type == TokenType.ANDROID:
                c.summary_status = "unavailable"
                self._go(Stage.VITALS, _notice(T.SUMMARY_UNAVAILABLE))
            else:
                self._go(Stage.IDENTITY, _notice(T.PIN_OFFLINE))
            return
        allow = confirm_last_try and c.pin_confirm
        try:
            facts = self._reading.read(
                conn,
                CardRequest(
                    pin=pin, collation_b=collation_b, challenge=nonce, allow_last_try=allow
                ),
                self._step,
            )
        except WrongPin as exc:
            with self._lock:
                c.pin_tries_left = exc.tries_left
            self._go(Stage.PIN, _error_notice(exc, "warning"))
            return
        except LastTryNeedsConfirmation:
            with self._lock:
                c.pin_tries_left = 1
                c.pin_confirm = True
            self._go(Stage.PIN, _notice(T.PIN_LAST_TRY, code="last_try"))
            return
        except PinBlocked:
            with self._lock:
                c.options = tuple(o for o in c.options if o is not IdentityMethod.PIN)
            if not c.options:
                with self._lock:
                    c.summary_status = "none"
                self._go(Stage.VITALS, _notice(T.PIN_BLOCKED, code="pin_blocked"))
            else:
                self._go(Stage.IDENTITY, _notice(T.PIN_BLOCKED, code="pin_blocked"))
            return
        except CardRemoved:
            self._card_problem(_notice(T.CARD_REMOVED, code="card_removed"))
            return
        except (PinError, JpkiError, ReaderError) as exc:
            self._go(Stage.PIN, _error_notice(exc, "warning"))
            return
        self._take_facts(facts)
        with self._lock:
            c.pin_confirm = False
            c.pin_tries_left = None
        if not facts.certificate_ok or facts.auth_signature is None:
            notice = _notice(T.SUMMARY_REJECTED, code="certificate", what="certificate")
            self._go(Stage.VITALS, notice)
            return
        self._lookup(
            {
                "kind": "pin_signature",
                "challenge_id": challenge["challenge_id"],
                "signature": base64.b64encode(facts.auth_signature).decode(),
            }
        )

    def submit_collation_b(self, digits: str) -> None:
        """照合番号B from the card face: the four attributes, verified, then the summary."""
        conn = self._reconnect_or_fail()
        if conn is None:
            return
        self._set_busy()
        try:
            facts = self._reading.read(conn, CardRequest(collation_b=digits), self._step)
        except CardRemoved:
            self._card_problem(_notice(T.CARD_REMOVED, code="card_removed"))
            return
        except (InvalidCollationNumber, PinError, JpkiError, ReaderError) as exc:
            self._go(Stage.COLLATION_B, _error_notice(exc, "warning"))
            return
        self._take_facts(facts)
        if facts.attributes is None:
            self._go(Stage.COLLATION_B, _notice(T.CARD_REMOVED))
            return
        self._lookup({"kind": "collation_b"})

    def _lookup(self, evidence: dict[str, Any], *, show: bool = True) -> None:
        c = self._case
        if show:
            self._go(Stage.LOOKING_UP)
            with self._lock:
                self._busy = True
        request = {
            "certificate": base64.b64encode(c.certificate_der or b"").decode(),
            "consent": (c.consent or Consent.CONSENTED).value,
            "evidence": evidence,
            "crew_member": self._device.crew_member,
        }
        try:
            answer = self._call(self._platform.lookup_summary, request)
        except TransportError:
            if show:
                with self._lock:
                    c.summary_status = "unavailable"
                self._go(Stage.SUMMARY, _notice(T.SUMMARY_UNAVAILABLE))
            return
        except PlatformError as exc:
            if show:
                with self._lock:
                    c.summary_status = "unavailable"
                self._go(Stage.SUMMARY, _notice(T.SUMMARY_REJECTED, code=exc.code, what=exc.code))
            return
        if not show:
            return
        with self._lock:
            c.summary_status = str(answer.get("status"))
            c.assurance = str(answer.get("assurance"))
            bundle = answer.get("bundle")
            c.bundle = bundle if isinstance(bundle, dict) else None
            c.sections = summary_sections(c.bundle) if c.bundle else ()
        notice = _notice(T.SUMMARY_NOT_FOUND, "info") if c.summary_status == "not_found" else None
        self._go(Stage.SUMMARY, notice)

    # -- the case ---------------------------------------------------------------------

    def show_summary(self) -> None:
        if self._case.summary_status is not None:
            self._go(Stage.SUMMARY)

    def to_vitals(self) -> None:
        self._go(Stage.VITALS)

    def set_chief_complaint(self, complaint: str) -> None:
        """One of ``CHIEF_COMPLAINTS`` (Japanese), or free text as the exception."""
        with self._lock:
            self._case.chief_complaint = complaint.strip() or None
        self._changed()

    def set_vital(self, name: str, value: float | str | None) -> None:
        """Set one value of the newest vitals set (a set is started when there is none).

        Out-of-range values are kept (the view flags them), never refused.
        """
        with self._lock:
            c = self._case
            if not c.vitals:
                c.vitals.append(VitalsDraft(observed_at=datetime.now(UTC)))
            if name not in (*PLAUSIBLE, "jcs"):
                raise ValueError(f"unknown vital {name!r}")
            change: dict[str, Any] = {name: value}
            c.vitals[-1] = replace(c.vitals[-1], **change)
        self._changed()

    def new_vitals_set(self) -> None:
        with self._lock:
            self._case.vitals.append(VitalsDraft(observed_at=datetime.now(UTC)))
        self._changed()

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
        vitals = tuple(
            VitalSigns(
                observed_at=v.observed_at or datetime.now(UTC),
                systolic_mmhg=v.systolic,
                diastolic_mmhg=v.diastolic,
                heart_rate_per_min=v.pulse,
                respiratory_rate_per_min=v.respiration,
                spo2_percent=v.spo2,
                body_temperature_c=v.temperature,
                jcs=v.jcs,
            )
            for v in reversed(c.vitals)
            if not v.is_empty()
        )
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
        offline = self._network_ok is False or self._platform_ok is False
        self._go(Stage.HOSPITALS, _notice(T.QUEUED_OFFLINE if offline else T.SENT, "info"))

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

    def finish(self) -> None:
        """Done: the device forgets the patient and says so on the standby screen."""
        self.forget()
        with self._lock:
            self._notice = _notice(T.FORGOTTEN, "info", "forgotten")
        self._changed()

    def forget(self) -> None:
        """Drop everything about the patient (done, idle timeout); back to standby."""
        with self._lock:
            if self._case.card_used:
                self._await_removal = True
            self._drop_connection()
            self._case = _Case()
            self._stage = Stage.STANDBY
            self._notice = None
            self._busy = False
            self._waiting = self._outbox.pending_count()
        self._changed()
