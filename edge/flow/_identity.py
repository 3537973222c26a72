"""Consent and identity: oral consent / unconscious / refused; face check, PIN proof,
照合番号B; then the summary look-up (audited by the platform with consent and evidence)."""

from __future__ import annotations

import base64
from typing import Any

from edge.jpki import (
    InvalidCollationNumber,
    JpkiError,
    LastTryNeedsConfirmation,
    PinBlocked,
    PinError,
    TokenType,
    WrongPin,
)
from edge.reader import CardRemoved, Connection, ReaderError
from sync import PlatformError, TransportError
from sync.signed import b64d

from . import _texts as T
from ._core import FlowCore, _error_notice, _notice
from ._model import Consent, IdentityMethod, Stage
from ._ports import CardRequest
from ._summary import summary_sections

__all__ = ["IdentitySteps"]


class IdentitySteps(FlowCore):
    """The consent and identity steps of ``CaseFlow``."""

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
            nonce = b64d(challenge["nonce"])
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
