"""The case flow: one patient case as a state machine, with no UI code.

Intents are plain methods. Those that talk to the card or the platform block
(``wait_for_card``, ``choose_consent``, ``choose_identity``, ``submit_pin``,
``submit_collation_b``, ``to_hospitals``, ``send_selected``,
``confirm_destination``, ``abort``): the UI calls them from a worker thread; tests
call them directly. Every change is pushed to the subscribers as a fresh
``CaseView``. Patient data lives in this object's memory only and is dropped by
``forget`` (done, 中止, idle timeout); only sealed envelopes and non-personal
statuses reach the disk.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from edge.jpki import JpkiError, PinRequired, TokenType
from edge.reader import Cancelled, CardRemoved, Connection, NoCard, ReaderError
from errbase import KyukyuError

from . import _texts as T
from ._core import DeviceIdentity, _Case, _error_notice, _notice, _options
from ._identity import IdentitySteps
from ._model import (
    CLOSURE_REASONS,
    VITAL_FIELD,
    Consent,
    Notice,
    Stage,
    Text,
    VitalsDraft,
)
from ._ports import CardRequest
from ._record import RecordSteps, near_hhmm
from ._reseal import ResealSteps
from ._sending import DestinationNotAccepted

__all__ = ["CaseFlow", "DestinationNotAccepted", "DeviceIdentity"]

log = logging.getLogger("edge.flow")


class CaseFlow(IdentitySteps, RecordSteps, ResealSteps):
    """One device's case flow: standby → card → consent → identity → summary → vitals →
    hospitals → destination → done (forget)."""

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
                try:
                    self._cards.wait_for_removal(timeout=timeout, cancel=cancel)
                except NoCard:  # still there after ``timeout``: standby asks to take it
                    if not self._card_left:
                        self._card_left = True
                        self._changed()
                    raise
                self._await_removal = False
                if self._removal_marker is not None:
                    self._removal_marker.unlink(missing_ok=True)
                if self._card_left:
                    self._card_left = False
                    self._changed()
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
            facts = self._reading.read(conn, CardRequest(), on_step=self._step_of(c))
        except (PinRequired, CardRemoved, JpkiError, ReaderError) as exc:
            if self._case is not c:
                return  # 中止 (or forgotten) while the card was being read: nothing to show
            self._read_failed(c, exc)
            return
        if self._case is not c:
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

    def _read_failed(self, c: _Case, exc: Exception) -> None:
        if isinstance(exc, PinRequired):
            # Only an Android token hides its certificate behind the PIN.
            with self._lock:
                c.token_type = TokenType.ANDROID
                c.options = _options(TokenType.ANDROID)
            self._after_read(_notice(T.PHONE_NEEDS_PIN, "info"))
        elif isinstance(exc, CardRemoved):
            self._card_problem(_notice(T.CARD_REMOVED, code="card_removed"))
        else:
            assert isinstance(exc, (JpkiError, ReaderError))
            self._card_problem(_error_notice(exc))

    def _after_read(self, notice: Notice | None) -> None:
        # Re-tapped after a removal: consent already given goes straight back to identity.
        c = self._case
        if c.consent is Consent.CONSENTED:
            self._go(Stage.PIN if c.token_type == TokenType.ANDROID else Stage.IDENTITY, notice)
        else:
            self._go(Stage.CONSENT, notice)

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
        """Set one value of the set being edited (the newest unless another was selected;
        a set is started when there is none). Its time stays the time it was taken.

        Out-of-range values are kept (the view flags them), never refused.
        """
        f = VITAL_FIELD.get(name)
        if f is None or not f.keyed:
            raise ValueError(f"unknown vital {name!r}")
        if f.choices and value is not None and not f.valid_choice(str(value)):
            raise ValueError(f"{name} is one of its choices")
        with self._lock:
            c = self._case
            if not c.vitals:
                c.vitals.append(VitalsDraft(observed_at=datetime.now(UTC)))
                c.vitals_selected = -1
            i = c.vitals_selected % len(c.vitals)
            change: dict[str, Any] = {name: value}
            c.vitals[i] = replace(c.vitals[i], **change)
        self._changed()

    def new_vitals_set(self) -> None:
        """A new set taken now, starting from the newest set's values (the crew changes
        what changed), selected for editing. A newest set that is empty, or still the
        same as the one before it, is reused (taken now)."""
        with self._lock:
            c = self._case
            now = datetime.now(UTC)
            fresh = c.vitals[-1].copy_at(now) if c.vitals else VitalsDraft(observed_at=now)
            unchanged = len(c.vitals) >= 2 and c.vitals[-2].copy_at(now) == fresh
            if c.vitals and (c.vitals[-1].is_empty() or unchanged):
                c.vitals[-1] = fresh
            else:
                c.vitals.append(fresh)
            c.vitals_selected = -1
        self._changed()

    def select_vitals_set(self, number: int) -> None:
        """Edit set ``number`` (1 = the first taken, as the screen numbers them)."""
        with self._lock:
            c = self._case
            if not 1 <= number <= len(c.vitals):
                return
            c.vitals_selected = number - 1
        self._changed()

    def set_vitals_time(self, number: int, hhmm: str) -> None:
        """Correct when set ``number`` was taken: ``HHMM`` in JST, on the day nearest to
        the time it had (a set taken at 00:05 corrected to 2355 is the evening before).
        The sets stay in time order (their numbers follow it) and the corrected set stays
        selected; a time that does not exist is a notice, not a change.
        """
        with self._lock:
            c = self._case
            if not 1 <= number <= len(c.vitals):
                return
            target = c.vitals[number - 1]
            moment = near_hhmm(hhmm, target.observed_at or datetime.now(UTC))
            if moment is None:
                self._notice = _notice(T.BAD_TIME, code="bad_time")
            else:
                edited = replace(target, observed_at=moment.astimezone(UTC))
                c.vitals[number - 1] = edited
                c.vitals.sort(key=lambda v: v.observed_at or datetime.min.replace(tzinfo=UTC))
                c.vitals_selected = next(i for i, v in enumerate(c.vitals) if v is edited)
                self._notice = None
        self._changed()

    def finish(self) -> None:
        """Done: the device forgets the patient and says so on the standby screen (and that
        the destination still waits to be sent, when it does)."""
        with self._lock:
            waiting = self._case.destination_state == "pending"
        self.forget()
        text = T.FORGOTTEN_DESTINATION_WAITING if waiting else T.FORGOTTEN
        with self._lock:
            self._notice = _notice(text, "info", "forgotten")
        self._changed()

    def abort(self, reason: str) -> None:
        """中止 / 不搬送 with one of ``CLOSURE_REASONS`` (Japanese), at any stage.

        A case already sent: its sealed closure is queued after it (every hospital asked
        sees it closed with the reason; under ``require_pq`` those with a hybrid key, and
        the notice names the others, to phone). A case never sent: its sealed case is discarded.
        Either way the device forgets the patient and says what happened.
        """
        if reason not in {r.ja for r in CLOSURE_REASONS}:
            raise ValueError("not a closure reason")
        self.cancel_wait()
        with self._lock:
            if not self._case.open:
                return
        queued, error, phone = self._queue_closures(reason)
        names = self._names(phone)  # before forgetting: the names of this case's rows
        self.forget()
        if error is not None:
            notice = _notice(T.ABORTED_NOT_QUEUED, "error", "aborted", reason=reason)
        elif phone:  # 要電話 under require_pq: the closure cannot reach them
            others = T.ABORTED_PHONE_OTHERS if queued else Text("", "")
            notice = _notice(
                T.ABORTED_PHONE, "warning", "aborted_phone", reason=reason, hospitals=names,
                others=others.ja, others_en=others.en,
            )  # fmt: skip
        elif queued:
            notice = _notice(T.ABORTED_NOTIFYING, "info", "aborted", reason=reason)
        else:
            notice = _notice(T.ABORTED_NOTHING_SENT, "info", "aborted", reason=reason)
        with self._lock:
            self._notice = notice
        if queued and self._delivery is not None:
            self._delivery.kick()
        self._changed()

    def forget(self) -> None:
        """Drop everything about the patient (done, idle timeout); back to standby."""
        with self._lock:
            if self._case.card_used:
                self._await_removal = True
                if self._removal_marker is not None:
                    try:
                        self._removal_marker.touch()
                    except OSError:  # this process still waits; a new one would not
                        log.warning("card removal marker not written")
            self._drop_connection()
            self._case = _Case()
            self._reseal_book.forget()  # no case is open: none is sealed again
            self._stage = Stage.STANDBY
            self._notice = None
            self._busy = False
            self._count_waiting()
        self._changed()
