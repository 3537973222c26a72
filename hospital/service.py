"""The receiving service: the platform stream in a thread, cases into the store, live news.

``sync.receiver.Receiver`` does the stream (catch-up by event number after any
gap, deduplication, acknowledgement); ``sync.device_keys.HubDeviceKeys`` gives
the device key the platform vouches for (signed by the pinned hub key), and with
it the fire department the device was enrolled for: stored with the case as its
sender (``sender_department``), whatever the case says inside. A case that does
not open (sealed for another hospital, tampered, unknown or revoked device), is
not a case the dashboard can read (``hospital.intake``: not JSON, not a FHIR
document Bundle) or cannot be stored (a value the database refuses) is
quarantined: recorded as a rejection with its error code and the posting device
only, never stored, never acknowledged; the stream goes on, and a restart does
not take it again. Only a store that is unavailable (its database down) holds
the stream: the case is read again once it is back. Each rejection is reported
to the platform once (``POST /v1/hospitals/me/refused-cases``: event number,
device, code; never content) from a thread of its own, retried while the
platform is unreachable; the stream never waits for it. ``destination`` events mark the confirmed
destination (``via``: the hospital's answer or the crew's phone call), once the
library has checked them whole (``Receiver.handle_other``: a malformed one is
reported and read again, never acted on). ``closure`` events (中止 / 不搬送) carry
the device's sealed closure (``sync.closure``): opened with the hospital's key,
checked against the device that sent the case, and the case is shown closed
with its reason; a closure that does not open or check (garbled, unknown case,
another device) is recorded as a rejection with its code and the stream goes on.
Every change is announced to the dashboard's live streams (its kind and the case's id,
never content).

The keys come from ``hospital.keyring.LiveKeys``: the key file is read again when a
case needs a key kind the service does not hold (a rotation, ``kyukyu hospital keys
rotate``, while it runs) and every ``key_check_seconds``; a case refused for want of
a key kind keeps its envelope and is opened again (``retry_held``) once the key is
there, so a rotation with cases in flight loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hospital.direct_intake import PLATFORM_OUT, DirectIntake
from hospital.identity import HospitalIdentity
from hospital.intake import CaseStoreFailed, check_case
from hospital.keyring import LiveKeys
from hospital.settings import HospitalSettings
from hospital.store import STORE_UNAVAILABLE, HospitalStore
from sync import (
    AuthError,
    CaseRefused,
    EnvelopeError,
    HandOffDeferred,
    MalformedEnvelope,
    MalformedEvent,
    NotFound,
    PlatformError,
    RateLimited,
    ResponseError,
    ServerError,
    SyncError,
    TransportError,
    WrongKeyKind,
)
from sync.closure import open_closure
from sync.device_keys import HubDeviceKeys, VouchedDevice
from sync.envelope import V2, SealedCase
from sync.receiver import (
    HospitalClient,
    ReceivedCase,
    Receiver,
    ReceiverState,
    StreamEvent,
)
from sync.seal import OpenedCase, OpeningKeys, open_case

__all__ = ["Broadcaster", "ReceivingService"]

log = logging.getLogger("hospital.service")

_T = TypeVar("_T")


class Broadcaster:
    """Thread-safe fan-out of small notices to the dashboard's async live streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = []

    def subscribe(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        with self._lock:
            self._subs.append((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        with self._lock:
            self._subs = [(lp, s) for lp, s in self._subs if s is not q]

    def publish(self, notice: str) -> None:
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:

            def put(q: asyncio.Queue[str] = q) -> None:
                if not q.full():
                    q.put_nowait(notice)

            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(put)


class _PosterCheckedKeys:
    """The device key the platform vouches for, only for the device that posted the case.

    The hub routes an envelope posted by device A even when its header names
    device B; a key of B (lost, revoked, never enrolled) must not open a way in
    through A. The event's ``device_id`` (the platform's routing metadata) must
    be the envelope's; otherwise the case is refused as from an unknown device.
    """

    def __init__(self, keys: HubDeviceKeys) -> None:
        self.keys = keys
        self.poster: str | None = None
        # The platform's document of the device whose key was given last (this case's):
        # its enrolled fire department is the sender shown, without a second fetch.
        self.vouched: VouchedDevice | None = None

    def __call__(self, device_id: str) -> Ed25519PublicKey | None:
        self.vouched = None
        if self.poster is not None and self.poster != device_id:
            log.warning("case refused: sealed by another device than the one that posted it")
            return None
        self.vouched = self.keys.vouched(device_id)
        return None if self.vouched is None else self.vouched.public_key


class _HospitalReceiver(Receiver):
    """The library receiver, plus the platform's ``destination`` notices."""

    def __init__(
        self,
        *args: Any,
        on_destination: Callable[[str, bool, str], None],
        on_closure: Callable[[StreamEvent], None],
        poster_keys: _PosterCheckedKeys,
        live_keys: LiveKeys,
        on_incident: Callable[[StreamEvent], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, hospital_key=live_keys.opening_keys(), **kw)
        self._live_keys = live_keys
        self._keys_used = live_keys.keys
        #: The envelope of the case being handled (kept with a refusal a key may heal).
        self.envelope: str | None = None
        self._on_destination = on_destination
        self._on_closure = on_closure
        self._on_incident = on_incident or (lambda ev: None)
        self._poster_keys = poster_keys

    def handle_other(self, ev: StreamEvent) -> None:
        """A ``destination`` or ``closure`` notice, already checked whole by
        ``sync.stream_event``."""
        if ev.kind == "closure":
            self._on_closure(ev)  # records its own failures: never stops the stream
            return
        if ev.kind == "incident":  # 多数傷病者: the dashboard alerts (hospital.incidents)
            self._on_incident(ev)
            return
        if ev.kind != "destination":
            return
        case_id, chosen = ev.data.get("case_id"), ev.data.get("chosen")
        via = ev.data.get("via", "answer")
        if (
            not isinstance(case_id, str)
            or not isinstance(chosen, bool)
            or via
            not in (
                "answer",
                "phone",
            )
        ):
            raise MalformedEvent(f"destination event {ev.seq} without case_id or chosen")
        self._on_destination(case_id, chosen, via)

    def handle_case(self, ev: StreamEvent) -> None:
        poster = ev.data.get("device_id")
        self._poster_keys.poster = poster if isinstance(poster, str) else None
        envelope = ev.data.get("envelope")
        self.envelope = envelope if isinstance(envelope, str) else None
        # The keys the service holds now (taken from the key file by any thread).
        self._keys_used = self._live_keys.keys
        self.hospital_key = self._keys_used.opening_keys()
        try:
            super().handle_case(ev)
        finally:
            self._poster_keys.poster = None
            self._poster_keys.vouched = None
            self.envelope = None

    def reload_keys(self) -> bool:
        """A case needs a key kind not held: the key file, read again if it changed."""
        self._live_keys.refresh()
        if self._live_keys.keys is self._keys_used:
            return False
        self._keys_used = self._live_keys.keys
        self.hospital_key = self._keys_used.opening_keys()
        return True


# The database cannot be reached or is busy: nothing wrong with the case, take it again.
# A refusal report the platform may take later; any other error refuses this report.
_REPORT_LATER = (TransportError, ServerError, RateLimited, AuthError, ResponseError)


class ReceivingService:
    def __init__(
        self,
        settings: HospitalSettings,
        identity: HospitalIdentity,
        store: HospitalStore,
        *,
        broadcaster: Broadcaster | None = None,
        exporter: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.store = store
        self.news = broadcaster or Broadcaster()
        self.exporter = exporter
        self.client = HospitalClient(
            identity.platform_url,
            hospital_id=identity.hospital_id,
            key=identity.keys.signing,
            ca_file=settings.platform_ca_file,
        )
        # Revoked devices' cases are refused; a revocation reaches us within a minute.
        self.device_keys = HubDeviceKeys(
            self.client, identity.hub_public_key, ttl_seconds=60, refuse_revoked=True
        )
        poster_keys = self._poster_keys = _PosterCheckedKeys(self.device_keys)
        self.state = ReceiverState(settings.data_dir / "stream-state.db")
        # The keys of the key file, read again when it is replaced (hospital.keyring).
        # New keys taken (by any thread): the cases held for want of them are opened now.
        self._keys_wanted = threading.Event()
        self._held_deferred = False  # the last retry_held stopped at an outage
        self.keys = LiveKeys(settings.resolved_key_file(), identity.keys, on_change=self._keys_news)
        self.receiver = _HospitalReceiver(
            self.client,
            live_keys=self.keys,
            device_key_for=poster_keys,
            state=self.state,
            on_case=self._on_case,
            on_rejected=self._on_rejected,
            on_destination=self._on_destination,
            on_closure=self._on_closure,
            on_incident=self._on_incident,
            poster_keys=poster_keys,
        )
        self._stop = threading.Event()
        self.stop_event = self._stop  # the loops of the direct route end with the service
        self._threads: list[threading.Thread] = []
        self._report_wanted = threading.Event()
        # The direct route (docs/disaster.md): the roster, the direct intake, reconciliation.
        self.direct = DirectIntake(self)
        # Reports the platform refused (not retried until the next start).
        self._report_refused: set[int] = set()

    def announce(self, kind: str, case_id: str | None = None) -> None:
        """Tell the dashboard's live streams what changed: the kind and the case's id
        (``{"kind": ..., "case_id": ...}``), never anything of its content."""
        self.news.publish(json.dumps({"kind": kind, "case_id": case_id}))

    # -- receiver callbacks (stream thread) -----------------------------------------

    def _on_case(self, case: ReceivedCase) -> None:
        """Check, then store; a case that is not good is refused (``CaseRefused``)."""
        self._take(case.event_id, case.opened, self._poster_keys.vouched)

    def _take(
        self,
        event_id: int,
        opened: OpenedCase,
        vouched: VouchedDevice | None,
        *,
        route: str = "platform",
        envelope: str | None = None,
    ) -> bool:
        """Check and store an opened case of the platform's event ``event_id`` (0 and
        ``route`` direct: one a device delivered straight, ``envelope`` kept to hand it in);
        False if it was here already (``CaseRefused``: not a case to store;
        ``HandOffDeferred``: the store is out; ``CaseStoreFailed``: this row cannot be
        stored, only the exception's type name said)."""
        bundle = check_case(opened.payload)
        department = (
            vouched.fire_department
            if vouched is not None and vouched.device_id == opened.device_id
            else None
        )
        try:
            added = self.store.add_case(
                case_id=opened.case_id,
                event_id=event_id,
                device_id=opened.device_id,
                sealed_at=opened.created_at,
                bundle=bundle,
                sender_department=department,
                route=route,
                envelope=envelope,
            )
        except STORE_UNAVAILABLE as exc:
            raise HandOffDeferred(type(exc).__name__) from None
        except Exception as exc:  # this one row cannot be stored: quarantined
            raise CaseStoreFailed(type(exc).__name__) from None
        if not added:
            if route == "platform":
                self._seen_directly(event_id, opened.case_id)
            return False
        if route == "direct":
            log.info("case received by the direct route")
        else:
            log.info("case received (event %s)", event_id)
        self.after_case(opened.case_id, bundle)
        return True

    def _seen_directly(self, event_id: int, case_id: str) -> None:
        """A streamed case stored before: if it came by the direct route, the platform has
        it now (reconciled), so an answer given meanwhile can reach it; it is not shown
        twice. Any other duplicate (an event seen again) changes nothing."""
        row = self.store.case(case_id)
        if row is None or row.route != "direct":
            return
        log.info("case event %s: received directly before", event_id)
        self.store.mark_direct_reported(case_id, "platform")
        self.direct.wake()

    def after_case(self, case_id: str, bundle: dict[str, Any]) -> None:
        """A new case is stored: tell the dashboard, export it (never stops the caller)."""
        self.announce("case", case_id)
        if self.exporter is not None:
            try:
                self.exporter(case_id, bundle)
            except Exception as exc:  # the export must never stop the stream
                log.warning("FHIR export failed: %s", type(exc).__name__)

    def _on_rejected(self, event_id: int, case_id: str | None, exc: SyncError) -> None:
        # The error code and the posting device only: never content, no patient data.
        log.warning("case event %s refused: %s", event_id, exc.code)
        # No key of its kind (yet): the envelope is kept and opened again once the key
        # file gives one (``retry_held``), never lost to a rotation.
        held = self.receiver.envelope if isinstance(exc, WrongKeyKind) else None
        self.store.add_rejection(
            event_id=event_id,
            case_id=case_id,
            code=exc.code,
            device_id=self._poster_keys.poster,
            envelope=held,
        )
        self.announce("rejection", case_id)
        self._report_wanted.set()
        if held is not None:
            log.warning(
                "case event %s kept to be opened once the key file holds a key of its kind"
                " (kyukyu hospital keys rotate; this service holds %s)",
                event_id,
                "+".join(self.keys.kinds()),
            )
            self._keys_wanted.set()

    # -- the keys (hospital.keyring) ------------------------------------------------

    def _keys_news(self) -> None:
        """New keys taken or the key file's problem changed: retry the held cases now,
        and tell the dashboards (its warning)."""
        self._keys_wanted.set()
        self.announce("keys")

    def open_with_keys(self, open_: Callable[[OpeningKeys], _T]) -> _T:
        """``open_`` with the keys held; if the envelope needs a key kind they lack, once
        more after reading the key file again (a rotation this service has not read)."""
        held = self.keys.keys
        try:
            return open_(held.opening_keys())
        except WrongKeyKind:
            self.keys.refresh()
            if self.keys.keys is held:
                raise
            return open_(self.keys.opening_keys())

    def retry_held(self) -> int:
        """Open again the cases refused for want of a key kind, with the keys held now,
        and take in each that opens as if it had just arrived (stored, acknowledged,
        announced; its refusal row goes, the audit keeps it). Returns how many."""
        taken = 0
        keys = self.keys.opening_keys()
        for row in self.store.held_rejections():
            assert row.id is not None
            assert row.envelope is not None
            try:
                sealed = SealedCase.from_text(row.envelope)
                if sealed.version == V2 and keys.xwing is None:
                    continue  # still no key of its kind: not even the device's key is fetched
                poster = _PosterCheckedKeys(self.device_keys)
                poster.poster = row.device_id
                opened = open_case(
                    sealed,
                    hospital_id=self.identity.hospital_id,
                    hospital_key=keys,
                    device_key_for=poster,
                    expected_case_id=row.case_id,
                )
                self._take(row.event_id, opened, poster.vouched)
            except WrongKeyKind:
                continue
            except (PlatformError, HandOffDeferred) as exc:
                log.info("held cases wait (%s)", getattr(exc, "code", type(exc).__name__))
                self._held_deferred = True
                break  # the platform or the store is out: the next round
            except (EnvelopeError, CaseRefused) as exc:
                self._refuse_held(row.id, row.event_id, row.case_id, exc.code)
                continue
            except Exception as exc:  # a bug: refused as the stream would, never retried forever
                self._refuse_held(row.id, row.event_id, row.case_id, CaseRefused.code)
                log.warning("held case event %s failed: %s", row.event_id, type(exc).__name__)
                continue
            self.state.record(row.event_id, opened.case_id, "ok")
            self.receiver.acknowledge(opened.case_id)
            self.store.release_rejection(row.id)
            log.info("case event %s taken: the key file gave its key kind", row.event_id)
            self.announce("rejection", row.case_id)
            taken += 1
        return taken

    def _refuse_held(self, row_id: int, event_id: int, case_id: str | None, code: str) -> None:
        """A held case that opened (or failed) for another reason than its key: refused
        for that reason now, its envelope dropped."""
        log.warning("held case event %s refused: %s", event_id, code)
        self.store.release_rejection(row_id, code=code)
        self.announce("rejection", case_id)

    def _keys_round(self, retry: bool) -> bool:
        """Look at the key file; open the held cases again if ``retry`` (asked for: at
        start, new keys, a case newly held) or the file gave new keys. Only a newly held
        key can open a held case, so a round without either loads none of them. Returns
        whether a retry is still owed (the platform or the store was out)."""
        self._held_deferred = False
        try:
            if self.keys.refresh():
                retry = True
            if retry:
                self.retry_held()
        except Exception as exc:  # the store: next round
            log.warning("held cases not retried: %s", type(exc).__name__)
            return True
        return retry and self._held_deferred

    def _keys_loop(self) -> None:
        retry = True  # at start: the cases held before
        while not self._stop.is_set():
            retry = self._keys_round(retry)
            if self._keys_wanted.wait(self.settings.key_check_seconds):
                self._keys_wanted.clear()  # set again meanwhile: the round below covers it
                retry = True

    def _on_incident(self, ev: StreamEvent) -> None:
        """A mass-casualty incident declared or closed: the dashboard's alert and tone
        (the incident's id only; the page reads the rest from the platform)."""
        incident_id = ev.data.get("incident_id")
        if isinstance(incident_id, str) and ev.data.get("state") in ("declared", "closed"):
            notice = {"kind": "incident", "case_id": None, "state": ev.data["state"]}
            self.news.publish(json.dumps({**notice, "incident_id": incident_id}))

    def _on_destination(self, case_id: str, chosen: bool, via: str) -> None:
        if self.store.set_destination(case_id, chosen, via):
            self.announce("destination", case_id)

    def _on_closure(self, ev: StreamEvent) -> None:
        """Open and record a closure; anything wrong is a rejection (code only)."""
        case_id = ev.data.get("case_id")
        known = isinstance(case_id, str)
        row = None
        try:
            row = self.store.case(case_id) if isinstance(case_id, str) else None
            envelope = ev.data.get("envelope")
            if row is None or not isinstance(envelope, str):
                raise MalformedEnvelope("closure of a case this hospital does not hold")
            sender, sealed = row.device_id, SealedCase.from_text(envelope)
            closure = self.open_with_keys(
                lambda keys: open_closure(
                    sealed,
                    hospital_id=self.identity.hospital_id,
                    hospital_key=keys,
                    # Only the device that sent the case may close it.
                    device_key_for=lambda d: self.device_keys(d) if d == sender else None,
                    expected_case_id=row.case_id,
                )
            )
            added = self.store.add_closure(
                case_id=closure.case_id,
                event_id=ev.seq,
                reason=closure.reason,
                closed_at=closure.closed_at,
            )
        except (PlatformError, HandOffDeferred, *STORE_UNAVAILABLE):
            raise  # nothing wrong with the closure: read again after a pause
        except Exception as exc:
            code = exc.code if isinstance(exc, EnvelopeError) else CaseStoreFailed.code
            log.warning("closure event %s refused: %s", ev.seq, code)
            self.store.add_rejection(
                event_id=ev.seq,
                case_id=case_id if known else None,
                code=f"closure:{code}",
                device_id=row.device_id if row is not None else None,
            )
            self.announce("rejection", case_id if known else None)
            self._report_wanted.set()
            return
        if added:
            log.info("case closed (event %s)", ev.seq)
            self.announce("closure", closure.case_id)

    # -- answers (dashboard threads) --------------------------------------------------

    def answer(self, case_id: str, answer: str, reason: str | None, by: str) -> None:
        """Send the answer through the platform, then record it (raises PlatformError).

        With the direct route on, an answer the platform cannot take now (it is out, or it
        does not have a case that came directly yet) is recorded all the same: the device
        reads it from the direct answer feed, and ``send_unsent_answers`` gives it to the
        platform once it can."""
        try:
            self.client.answer(case_id, answer, reason)
        except (*PLATFORM_OUT, NotFound) as exc:
            row = self.store.case(case_id)
            if (
                self.settings.direct_listen_port is None
                or row is None
                # A 404 is "not yet" only for a case that came directly (not reconciled).
                or (isinstance(exc, NotFound) and row.route != "direct")
            ):
                raise
            self.store.set_answer(case_id, answer=answer, reason=reason, by=by, sent=False)
            log.info("answer kept for the platform (it is out or does not have the case yet)")
        else:
            self.store.set_answer(case_id, answer=answer, reason=reason, by=by)
        self.announce("answer", case_id)

    # -- refusals reported to the platform (their own thread) ---------------------------

    def report_refusals(self) -> int:
        """Report the refusals not reported yet (code, device, event; never content).

        Stops at the first failure that may heal (the platform unreachable, busy): the
        rest wait for the next round. A report the platform refuses is not retried
        until the next start. Returns how many were reported.
        """
        sent = 0
        for row in self.store.unreported_rejections():
            assert row.id is not None
            if row.id in self._report_refused:
                continue
            try:
                self.client.report_refused(row.event_id, row.device_id, row.code)
            except _REPORT_LATER as exc:
                log.info("refusal reports deferred (%s)", exc.code)
                break
            except PlatformError as exc:
                log.warning(
                    "the platform refused the report of refused event %s (%s)",
                    row.event_id,
                    getattr(exc, "hub_code", None) or exc.code,
                )
                self._report_refused.add(row.id)
                continue
            self.store.mark_reported(row.id)
            sent += 1
        return sent

    def _report_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.report_refusals()
            except Exception as exc:  # the store: next round
                log.warning("refusal reports failed: %s", type(exc).__name__)
            self._report_wanted.wait(self.settings.refusal_report_retry_seconds)
            self._report_wanted.clear()

    # -- life cycle -----------------------------------------------------------------

    def housekeeping(self) -> None:
        """Retention purge, expired sessions, and exports that failed before (retried)."""
        n = self.store.purge(self.settings.retention_seconds)
        if n:
            log.info("retention: purged %d cases", n)
            self.announce("purge")
        self.store.drop_expired_sessions()
        if self.exporter is not None:
            for row in self.store.unexported():
                try:
                    self.exporter(row.case_id, self.store.bundle_of(row))
                except Exception as exc:
                    log.warning("FHIR export retry failed: %s", type(exc).__name__)
                    break  # the endpoint is down: next round

    def _purge_loop(self) -> None:
        while not self._stop.wait(self.settings.purge_interval_seconds):
            try:
                self.housekeeping()
            except Exception as exc:
                log.warning("housekeeping failed: %s", type(exc).__name__)

    def start(self) -> None:
        loops: list[tuple[Callable[..., None], str]] = [
            (self.receiver.run, "stream"),
            (self._purge_loop, "purge"),
            (self._report_loop, "reports"),
            (self._keys_loop, "keys"),
        ]
        if self.settings.direct_listen_port is not None:
            loops.append((self.direct.run, "direct"))
        for target, name in loops:
            args = (self._stop,) if target == self.receiver.run else ()
            t = threading.Thread(target=target, args=args, name=f"hospital-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._report_wanted.set()
        self._keys_wanted.set()
        self.direct.wake()
        for t in self._threads:
            t.join(2)
        # A stream waiting for the hub's next ping: closing the client ends it now.
        self.client.close()
        for t in self._threads:
            t.join(10)
        self.state.close()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)
