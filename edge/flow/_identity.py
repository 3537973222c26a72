"""Consent and identity: oral consent / unconscious / refused; face check, PIN proof,
照合番号B; then the summary look-up (audited by the platform with consent and evidence).

照合番号B has its own words and its own counter (``_texts.COLLATION_B_*``): a wrong
number says 照合番号B and what to check on the card, the last try asks for a
confirmation as the PIN's does, a locked one falls back to another method. A crew
that knows only the Western birth date keys it and gets the era digits offered
(``convert_birth_date``, through ``edge.jpki.era``: the one conversion, also behind
``kyukyu card era``).
"""

from __future__ import annotations

from typing import Any

from edge.jpki import (
    InvalidBirthDate,
    InvalidCollationNumber,
    JpkiError,
    LastTryNeedsConfirmation,
    PinBlocked,
    PinError,
    TokenType,
    WrongCollationNumber,
    WrongPin,
)
from edge.jpki.era import era_of_birth_date
from edge.reader import CardRemoved, Connection, ReaderError
from sync import PlatformError, TransportError
from sync.signed import b64d, b64e_std

from . import _texts as T
from ._core import FlowCore, _error_notice, _notice
from ._model import Consent, EraOffer, IdentityMethod, Notice, Stage, Text
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
            self._case.collation_confirm = False
            self._case.era_offer = None
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
                self._step_of(c),
            )
        except WrongPin as exc:
            if not isinstance(exc, WrongCollationNumber):  # 照合番号B's counter is not the PIN's
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
                "signature": b64e_std(facts.auth_signature),
            }
        )

    def submit_collation_b(self, digits: str, *, confirm_last_try: bool = False) -> None:
        """照合番号B from the card face: the four attributes, verified, then the summary.

        With one try left the number is not sent until the crew confirms
        (``confirm_last_try`` after ``collation_b_needs_confirmation``).
        """
        c = self._case
        conn = self._reconnect_or_fail()
        if conn is None:
            return
        with self._lock:
            c.era_offer = None
            allow = confirm_last_try and c.collation_confirm
        self._set_busy()
        try:
            facts = self._reading.read(
                conn, CardRequest(collation_b=digits, allow_last_try=allow), self._step_of(c)
            )
        except CardRemoved:
            self._card_problem(_notice(T.CARD_REMOVED, code="card_removed"))
            return
        except InvalidCollationNumber:
            self._go(Stage.COLLATION_B, _notice(T.COLLATION_B_FORMAT, code="invalid_collation_b"))
            return
        except WrongPin as exc:  # only 照合番号B was sent: WrongCollationNumber
            with self._lock:
                c.collation_tries_left = exc.tries_left
            notice = _notice(T.COLLATION_B_WRONG, code=exc.code, tries=str(exc.tries_left))
            self._go(Stage.COLLATION_B, notice)
            return
        except LastTryNeedsConfirmation:
            with self._lock:
                c.collation_tries_left = 1
                c.collation_confirm = True
            self._go(Stage.COLLATION_B, _notice(T.COLLATION_B_LAST_TRY, code="last_try"))
            return
        except PinBlocked:
            with self._lock:
                c.options = tuple(o for o in c.options if o is not IdentityMethod.COLLATION_B)
                c.collation_confirm = False
                c.collation_tries_left = 0
                if not c.options:
                    c.summary_status = "none"
            notice = _notice(T.COLLATION_B_BLOCKED, code="collation_b_blocked")
            self._go(Stage.IDENTITY if c.options else Stage.VITALS, notice)
            return
        except (PinError, JpkiError, ReaderError) as exc:
            self._go(Stage.COLLATION_B, _error_notice(exc, "warning"))
            return
        self._take_facts(facts)
        with self._lock:
            c.collation_confirm = False
            c.collation_tries_left = None
        if facts.attributes is None:
            self._go(Stage.COLLATION_B, _notice(T.CARD_REMOVED))
            return
        self._lookup({"kind": "collation_b"})

    def convert_birth_date(self, western: str) -> None:
        """The crew keyed the Western birth date (``19800301`` / ``1980-03-01``): offer the
        era digits the card prints (``550301``). Nothing is sent; the screen keys the
        digits in when the crew confirms, then ``close_era_offer``. A date with no era
        form (impossible, before Meiji, after today) says why."""
        if self._stage is not Stage.COLLATION_B:
            return
        try:
            era = era_of_birth_date(western)
        except InvalidBirthDate as exc:
            with self._lock:
                self._case.era_offer = None
            self._go(Stage.COLLATION_B, _error_notice(exc, "warning"))
            return
        year = era.era.start.year + era.year - 1
        western_ja = f"{year}年{era.month}月{era.day}日"
        western_en = f"{year}-{era.month:02d}-{era.day:02d}"
        offer = EraOffer(western=Text(western_ja, western_en), era=str(era), digits=era.yymmdd)
        with self._lock:
            self._case.era_offer = offer
        era_en = f"{era.era.romaji} {era.year}-{era.month:02d}-{era.day:02d}"
        notice = Notice(
            Text(
                T.ERA_OFFER.ja.format(western=western_ja, era=offer.era, digits=offer.digits),
                T.ERA_OFFER.en.format(western=western_en, era=era_en, digits=offer.digits),
            ),
            "info",
            "era_offer",
        )
        self._go(Stage.COLLATION_B, notice)

    def close_era_offer(self) -> None:
        """The crew used the offered digits (the screen keys them in) or declined them."""
        if self._stage is not Stage.COLLATION_B:
            return
        with self._lock:
            self._case.era_offer = None
        self._go(Stage.COLLATION_B)

    def _lookup(self, evidence: dict[str, Any], *, show: bool = True) -> None:
        c = self._case
        if show:
            self._go(Stage.LOOKING_UP)
            with self._lock:
                self._busy = True
        request = {
            "certificate": b64e_std(c.certificate_der or b""),
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
