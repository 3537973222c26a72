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
from ._model import PLAUSIBLE, Consent, Notice, Stage, Text, VitalsDraft
from ._ports import CardRequest
from ._sending import HospitalSteps

__all__ = ["CaseFlow", "DeviceIdentity"]

log = logging.getLogger("edge.flow")


class CaseFlow(IdentitySteps, HospitalSteps):
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
                self._cards.wait_for_removal(timeout=timeout, cancel=cancel)
                self._await_removal = False
                if self._removal_marker is not None:
                    self._removal_marker.unlink(missing_ok=True)
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
                if self._removal_marker is not None:
                    try:
                        self._removal_marker.touch()
                    except OSError:  # this process still waits; a new one would not
                        log.warning("card removal marker not written")
            self._drop_connection()
            self._case = _Case()
            self._stage = Stage.STANDBY
            self._notice = None
            self._busy = False
            self._waiting = self._outbox.pending_count()
        self._changed()
