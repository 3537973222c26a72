"""The hospital's side of the direct route (docs/disaster.md): the device roster it keeps,
the cases, closures and destinations devices deliver straight to it while the platform is
out (``hospital.direct`` serves them), and the reconciliation once the platform is back:
the answers the platform missed, and every directly received case handed in to the
platform (``POST /v1/hospitals/me/direct-receipts``), so a case whose device never comes
back is known to the platform too.

``DirectIntake`` belongs to a ``hospital.service.ReceivingService`` and stores through it,
so a case taken directly is checked, stored, announced and exported exactly like one from
the platform's stream (``route`` direct), once per case id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import exc as sa_exc

from hospital.errors import DirectRefused
from hospital.intake import CaseStoreFailed
from hospital.store import STORE_UNAVAILABLE
from sync import (
    Backoff,
    CaseRefused,
    EnvelopeError,
    HandOffDeferred,
    HttpStatusError,
    NotFound,
    PlatformError,
    RateLimited,
    ServerError,
    SnapshotRollback,
    SyncError,
    Timeout,
    TransportError,
    WrongKeyKind,
)
from sync.closure import open_closure
from sync.device_keys import VouchedDevice
from sync.envelope import SealedCase
from sync.roster import DeviceRoster
from sync.seal import open_case

if TYPE_CHECKING:
    from hospital.service import ReceivingService

__all__ = ["PLATFORM_OUT", "DirectIntake"]

log = logging.getLogger("hospital.direct")

# The platform is out (no answer, 5xx, 429, a timeout): an answer is kept for later.
PLATFORM_OUT = (TransportError, ServerError, RateLimited, Timeout)
#: How long a directly received case waits before it is offered to the platform again
#: after the platform answered with an error that may pass (5xx, 408, 429).
REPORT_BACKOFF = Backoff(base=1.0, cap=60.0)
# 4xx that may pass (a clock off for a moment, a slow request): offered again.
_PASSING = frozenset({401, 408, 425})
# The store cannot be reached or is busy: the device sends again.
_Opened = TypeVar("_Opened")


def _keys_unavailable(exc: WrongKeyKind) -> DirectRefused:
    """A case sealed to a key this service does not hold yet (a rotation whose key file it
    could not read): a 503, so the device keeps the case and sends it again, never a
    refusal for good."""
    log.warning("direct case waits: %s (the key file gives no key of its kind)", exc.code)
    return DirectRefused(
        503, "keys_unavailable",
        "this hospital does not hold the key this case was sealed to yet; retry",
        "病院側で鍵の準備ができていません。自動で再送します。",
    )  # fmt: skip


def _refused(what: str, exc: SyncError) -> DirectRefused:
    """A direct case or closure that is not good (its code only: never its content)."""
    log.warning("direct %s refused: %s", what, exc.code)
    return DirectRefused(422, exc.code, exc.message_en, exc.message_ja)


def _store_unavailable() -> DirectRefused:
    """The store cannot be reached or is busy: a 503, the device sends again."""
    return DirectRefused(
        503, "store_unavailable", "the hospital's store is unavailable; retry",
        "病院のデータベースが一時的に使えません。再送してください。",
    )  # fmt: skip


def _store_failed(what: str, exc: CaseStoreFailed) -> DirectRefused:
    """The store failed otherwise (this one row, as the stream quarantines it): refused
    with the code only (a 4xx, so it holds up none of the device's later cases; the device
    still hands it to the platform), the exception's type name logged; never its text (the
    SQL and its values)."""
    log.warning("direct %s not stored: %s (%s)", what, exc.code, exc.detail)
    return DirectRefused(422, exc.code, CaseStoreFailed.message_en, CaseStoreFailed.message_ja)


@contextmanager
def _store_errors(what: str) -> Iterator[None]:
    """A store call of the direct route: unavailable is a 503, any other failure a
    ``CaseStoreFailed`` refusal (its type name logged, never its text)."""
    try:
        yield
    except STORE_UNAVAILABLE:
        raise _store_unavailable() from None
    except sa_exc.SQLAlchemyError as exc:
        raise _store_failed(what, CaseStoreFailed(type(exc).__name__)) from None


class DirectIntake:
    """The direct route of one receiving service."""

    def __init__(
        self,
        service: ReceivingService,
        *,
        report_backoff: Backoff = REPORT_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.report_backoff = report_backoff
        self._clock = clock
        #: Per directly received case: (failed reports, not before ``clock``).
        self._report_retry: dict[str, tuple[int, float]] = {}
        self.roster = DeviceRoster(
            service.settings.data_dir / "device-roster.json", service.identity.hub_public_key
        )
        self.registered = False
        self._wanted = threading.Event()

    def wake(self) -> None:
        """Send the kept answers and hand in the direct cases now (a directly received
        case reached the platform: it answers again, so nothing waits its backoff)."""
        self._report_retry.clear()
        self._wanted.set()

    def send_unsent_answers(self) -> int:
        """Give the platform the answers it missed (given while it was out); stops at the
        first sign it is still out. A case it does not have yet waits for its event; one
        it can never have (it came from the platform, or the platform refused it for good
        when it was handed in) is settled like an answer refused for good."""
        sent = 0
        for row in self.service.store.unsent_answers():
            assert row.answer is not None
            try:
                self.service.client.answer(row.case_id, row.answer, row.answer_reason)
            except PLATFORM_OUT as exc:
                log.info("unsent answers deferred (%s)", exc.code)
                break
            except NotFound:
                if row.route == "direct" and not (row.direct_report or "").startswith("refused:"):
                    continue  # the device has not reconciled this case yet
                log.warning("the platform can never have the case of a kept answer (not_found)")
            except PlatformError as exc:
                # Refused for good (e.g. the case was closed): recorded, not retried.
                log.warning("the platform refused a kept answer (%s)", exc.code)
            self.service.store.mark_answer_sent(row.case_id, row.answer)
            self.service.announce("answer", row.case_id)
            sent += 1
        return sent

    def report_direct_cases(self) -> int:
        """Hand the platform every directly received case it may not have (its device may
        never come back): ``POST /v1/hospitals/me/direct-receipts`` with the envelope as
        the device sent it; the platform stores it once (201, or 200: it had it). Stops at
        the first sign the platform is still out; a case refused for good (a 4xx) is
        recorded and not offered again; one that failed otherwise waits its own backoff.
        One bad case never holds up the others."""
        reported = 0
        for case_id, device_id, envelope in self.service.store.unreported_direct():
            failures, not_before = self._report_retry.get(case_id, (0, 0.0))
            if self._clock() < not_before:
                continue
            try:
                self.service.client.http.request(
                    "POST",
                    "/v1/hospitals/me/direct-receipts",
                    body={"case_id": case_id, "device_id": device_id, "envelope": envelope},
                )
            except PLATFORM_OUT as exc:
                retry_after = exc.retry_after if isinstance(exc, HttpStatusError) else None
                self._back_off(case_id, failures, retry_after)
                log.info("direct cases not reported yet (%s)", exc.code)
                break
            except HttpStatusError as exc:
                if 400 <= exc.status < 500 and exc.status not in _PASSING:
                    # Refused for good (not a recipient, unknown device, bad envelope):
                    # recorded with the platform's code, not offered again.
                    log.warning("the platform refused a direct case (%s)", exc.hub_code)
                    self.service.store.mark_direct_reported(
                        case_id, f"refused:{exc.hub_code or exc.status}"
                    )
                    self._report_retry.pop(case_id, None)
                else:
                    self._back_off(case_id, failures, exc.retry_after)
                continue
            except PlatformError as exc:  # an answer that cannot be read: again later
                log.warning("direct case report failed (%s)", exc.code)
                self._back_off(case_id, failures, None)
                continue
            self.service.store.mark_direct_reported(case_id, "reported")
            self._report_retry.pop(case_id, None)
            reported += 1
        return reported

    def _back_off(self, case_id: str, failures: int, retry_after: float | None) -> None:
        wait = self.report_backoff.delay(failures + 1, retry_after)
        self._report_retry[case_id] = (failures + 1, self._clock() + wait)

    def _direct_device(self, device_id: str) -> VouchedDevice:
        vouched = self.roster.vouched(device_id)
        if vouched is None or vouched.public_key is None:
            raise DirectRefused(
                403,
                "unknown_device",
                "not an enrolled device (or revoked)",
                "登録されていない端末です（または失効しています）。",
            )
        return vouched

    def _open(
        self,
        opener: Callable[..., _Opened],
        vouched: VouchedDevice,
        case_id: str,
        envelope: str,
        what: str,
    ) -> _Opened:
        """``envelope`` (a case or a closure, ``what``) opened by ``opener`` with this
        hospital's keys and checked against the roster's key of its device: no key of its
        kind yet is a 503 (sent again), a bad envelope a 422 (refused for good)."""
        device_id = vouched.device_id
        try:
            sealed = SealedCase.from_text(envelope)
            return self.service.open_with_keys(
                lambda keys: opener(
                    sealed,
                    hospital_id=self.service.identity.hospital_id,
                    hospital_key=keys,
                    device_key_for=lambda d: vouched.public_key if d == device_id else None,
                    expected_case_id=case_id,
                )
            )
        except WrongKeyKind as exc:
            raise _keys_unavailable(exc) from None
        except EnvelopeError as exc:
            raise _refused(what, exc) from None

    def _own_case(self, device_id: str, case_id: str) -> None:
        """404 unless ``case_id`` is a case ``device_id`` sent here."""
        with _store_errors("case lookup"):
            row = self.service.store.case(case_id)
        if row is None or row.device_id != device_id:
            raise DirectRefused(
                404, "unknown_case", "no such case from this device", "該当する事案がありません。"
            )

    def take_direct_case(self, device_id: str, case_id: str, envelope: str) -> bool:
        """A sealed case straight from ``device_id``: opened with this hospital's key,
        checked against the roster's key of that device, then checked and stored exactly
        as a streamed case is (``ReceivingService._take``, ``route`` direct), once. False
        if the case was here already."""
        vouched = self._direct_device(device_id)
        opened = self._open(open_case, vouched, case_id, envelope, "case")
        try:
            return self.service._take(0, opened, vouched, route="direct", envelope=envelope)
        except HandOffDeferred:
            raise _store_unavailable() from None
        except CaseStoreFailed as exc:
            raise _store_failed("case", exc) from None
        except CaseRefused as exc:
            raise _refused("case", exc) from None

    def take_direct_closure(self, device_id: str, case_id: str, envelope: str) -> bool:
        """中止 / 不搬送 straight from the device that sent the case."""
        vouched = self._direct_device(device_id)
        self._own_case(device_id, case_id)
        closure = self._open(open_closure, vouched, case_id, envelope, "closure")
        with _store_errors("closure"):
            added = self.service.store.add_closure(
                case_id=closure.case_id,
                event_id=0,
                reason=closure.reason,
                closed_at=closure.closed_at,
            )
        if added:
            self.service.announce("closure", case_id)
        return added

    def take_direct_destination(
        self, device_id: str, case_id: str, hospital_id: str, via: str
    ) -> None:
        """搬送先決定 straight from the device that sent the case: this hospital or another."""
        self._direct_device(device_id)
        self._own_case(device_id, case_id)
        with _store_errors("destination"):
            changed = self.service.store.set_destination(
                case_id, hospital_id == self.service.identity.hospital_id, via
            )
        if changed:
            self.service.announce("destination", case_id)

    def refresh_roster(self) -> int:
        """Fetch the hub-signed device roster and keep it (``SnapshotRollback`` for an
        older one: nothing changes); its version."""
        doc = self.service.client.http.request_json("GET", "/v1/devices/roster")
        return self.roster.accept(doc)

    def register_direct_address(self) -> None:
        """Tell the platform where devices reach this hospital directly, and the TLS
        certificate they pin (``PUT /v1/hospitals/me/direct``)."""
        url, cert = self.service.settings.direct_public_url, self.service.settings.tls_certfile
        if url is None or cert is None:
            return
        self.service.client.http.request(
            "PUT", "/v1/hospitals/me/direct", body={"url": url, "tls_cert": cert.read_text()}
        )
        self.registered = True

    def run(self) -> None:
        """While the platform is up: keep the roster fresh and the address registered;
        always: hand in the cases received directly and give the platform the answers it
        missed."""
        while not self.service.stop_event.is_set():
            try:
                if not self.registered:
                    self.register_direct_address()
                self.refresh_roster()
            except SnapshotRollback:
                log.warning("device roster refused: older than the one held")
            except PlatformError as exc:
                log.info("device roster not refreshed (%s)", exc.code)
            except Exception as exc:
                log.warning("device roster refresh failed: %s", type(exc).__name__)
            deadline = self.service.settings.roster_refresh_seconds
            waited = 0.0
            while waited < deadline and not self.service.stop_event.is_set():
                step = min(self.service.settings.direct_reconcile_seconds, deadline - waited)
                try:
                    self.report_direct_cases()
                except Exception as exc:
                    log.warning("direct case reports failed: %s", type(exc).__name__)
                try:
                    self.send_unsent_answers()
                except Exception as exc:
                    log.warning("unsent answers failed: %s", type(exc).__name__)
                self._wanted.wait(step)
                self._wanted.clear()
                waited += step
