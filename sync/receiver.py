"""The hospital side: receive sealed cases from the platform stream and open them.

``Receiver`` subscribes to ``GET /v1/hospitals/me/events?after=N`` (SSE, ``id:``
is the event number, repeated as ``seq`` inside the JSON data), remembers the last
number durably (SQLite), and after a gap or a restart resumes from it. An event
that does not parse, or whose ``id`` and ``seq`` disagree, is a ``MalformedEvent``:
reported (log, ``on_error``) and retried after a reconnect; the position never
moves past it. Each case is opened with the hospital's
private key (signature checked against the device directory), deduplicated by
case id, handed to ``on_case`` and then acknowledged
(``POST /v1/cases/{id}/ack``).

A case is refused, never fatal: an envelope that does not open (``EnvelopeError``)
or a case ``on_case`` cannot take (it raises ``CaseRefused``, or any other
exception, which is refused as ``case_refused``) is handed to ``on_rejected``,
recorded with its code and passed: the stream goes on, and a restart does not
take it again. It is not acknowledged: for the platform (and the crew) the
hospital has not received it. Only ``HandOffDeferred`` from ``on_case`` (the
store is unavailable), or an exception from ``on_rejected`` (the refusal could
not be recorded), leaves the event unrecorded: it is read again after a pause.
``run`` survives any exception. A case sealed to a key kind ``hospital_key`` lacks
(``WrongKeyKind``) is opened once more if ``reload_keys`` (a subclass's hook: its keys
may have been rotated) gives new keys, before it is refused.

Hand-off is deduplicated by case id and recorded durably right after
``on_case`` returns (then acknowledged; a failed ack is retried before the next
stream). Only a crash between ``on_case`` returning and that record replays a
case once more, so ``on_case`` should be idempotent by ``case_id`` (the
dashboard stores by case id).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync._backoff import Backoff
from sync._errors import (
    CaseRefused,
    EnvelopeError,
    HandOffDeferred,
    MalformedEvent,
    PlatformError,
    SyncError,
    WrongKeyKind,
)
from sync._http import (
    DEFAULT_TIMEOUT,
    REVOKED,
    ServerSentEvent,
    SignedHttp,
    StreamEvent,
    stream_event,
)
from sync.envelope import SealedCase
from sync.seal import DeviceKeyLookup, HospitalKey, OpenedCase, open_case

__all__ = ["HospitalClient", "ReceivedCase", "Receiver", "ReceiverState", "StreamEvent"]

#: The longest pause between reconnections (full jitter below it; a ``Retry-After`` of the
#: platform is a floor): a hospital is back on its stream within seconds of the platform's
#: recovery, and thousands of them still spread their reconnections over this window.
RECONNECT_CAP_SECONDS = 10.0

log = logging.getLogger("sync.receiver")


class HospitalClient:
    """The hospital's signed calls: event stream, acknowledgement, answer."""

    def __init__(
        self,
        base_url: str,
        *,
        hospital_id: str,
        key: Ed25519PrivateKey,
        ca_file: str | Path | None = None,
        verify: ssl.SSLContext | bool | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.hospital_id = hospital_id
        self.http = SignedHttp(
            base_url,
            key=key,
            key_id=f"hospital:{hospital_id}",
            ca_file=ca_file,
            verify=verify,
            transport=transport,
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HospitalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def events(
        self,
        after: int,
        stop: threading.Event | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> Iterator[ServerSentEvent]:
        """The hospital's stream after event number ``after`` (see ``SignedHttp.events``)."""
        return self.http.events(
            "/v1/hospitals/me/events", after=after, stop=stop, on_keepalive=on_keepalive
        )

    def ack(self, case_id: str) -> None:
        self.http.request("POST", f"/v1/cases/{case_id}/ack", body={}, ok=(200, 201, 204))

    def answer(self, case_id: str, answer: str, reason: str | None = None) -> None:
        body: dict[str, Any] = {"answer": answer}
        if reason:
            body["reason"] = reason
        self.http.request("POST", f"/v1/cases/{case_id}/answers", body=body, ok=(200, 201, 204))

    def report_refused(self, event_id: int, device_id: str | None, code: str) -> dict[str, Any]:
        """Tell the platform that the case of event ``event_id`` was refused here, and why
        (the code only: never any content). Idempotent per event; returns the report."""
        body: dict[str, Any] = {"event_id": event_id, "device_id": device_id, "code": code}
        out: dict[str, Any] = self.http.request_json(
            "POST", "/v1/hospitals/me/refused-cases", body=body, ok=(200, 201)
        )
        return out

    def set_availability(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Change some of this hospital's 応需状況 (``sync.availability``); the platform
        answers the whole new document."""
        out: dict[str, Any] = self.http.request_json(
            "POST", "/v1/hospitals/me/availability", body={"items": items}
        )
        return out

    def availability(self) -> dict[str, Any]:
        """This hospital's 応需状況 document as the platform holds it."""
        out: dict[str, Any] = self.http.request_json("GET", "/v1/hospitals/me/availability")
        return out


@dataclass(frozen=True)
class ReceivedCase:
    event_id: int
    opened: OpenedCase

    @property
    def case_id(self) -> str:
        return self.opened.case_id

    def bundle(self) -> dict[str, Any]:
        return self.opened.bundle()


class ReceiverState:
    """Durable: the last event number and the case ids already handed over."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1),"
            " last_event INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS received (case_id TEXT PRIMARY KEY, event_id INTEGER,"
            " outcome TEXT NOT NULL, at REAL NOT NULL, acked INTEGER NOT NULL DEFAULT 0);"
        )

    @property
    def last_event(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT last_event FROM cursor WHERE id = 1").fetchone()
        return 0 if row is None else int(row[0])

    def seen(self, case_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM received WHERE case_id = ? AND outcome = 'ok'", (case_id,)
            ).fetchone()
        return row is not None

    def record(self, event_id: int, case_id: str | None, outcome: str) -> None:
        """Advance the cursor (never backwards) and remember the case, atomically."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if case_id is not None:
                    self._db.execute(
                        "INSERT INTO received (case_id, event_id, outcome, at) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (case_id) DO UPDATE SET outcome = excluded.outcome"
                        " WHERE received.outcome != 'ok'",
                        (case_id, event_id, outcome, time.time()),
                    )
                self._db.execute(
                    "INSERT INTO cursor (id, last_event) VALUES (1, ?) ON CONFLICT (id)"
                    " DO UPDATE SET last_event = MAX(last_event, excluded.last_event)",
                    (event_id,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_acked(self, case_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE received SET acked = 1 WHERE case_id = ?", (case_id,))

    def unacked(self) -> list[str]:
        """Cases handed over whose acknowledgement has not reached the platform yet."""
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id FROM received WHERE outcome = 'ok' AND acked = 0 ORDER BY event_id"
            ).fetchall()
        return [r[0] for r in rows]

    def received_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT case_id FROM received WHERE outcome = 'ok' ORDER BY event_id"
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._db.close()


class Receiver:
    """Subscribe, catch up, open, deduplicate, hand over, acknowledge."""

    def __init__(
        self,
        client: HospitalClient,
        *,
        hospital_key: HospitalKey,
        device_key_for: DeviceKeyLookup,
        state: ReceiverState,
        on_case: Callable[[ReceivedCase], None],
        on_rejected: Callable[[int, str | None, SyncError], None] | None = None,
        backoff: Backoff | None = None,
        on_error: Callable[[PlatformError], None] | None = None,
    ) -> None:
        self.client = client
        self.hospital_id = client.hospital_id
        self.hospital_key = hospital_key
        self.device_key_for = device_key_for
        self.state = state
        self.on_case = on_case
        self.on_rejected = on_rejected
        self.backoff = backoff or Backoff(base=0.5, cap=RECONNECT_CAP_SECONDS)
        self.on_error = on_error
        self.last_error: PlatformError | None = None
        self._deferred = False

    def handle(self, event: ServerSentEvent) -> None:
        """Process one stream event: a case is opened and handed over; a well-formed event
        of another kind (``destination``) only advances the cursor.

        Raises:
            MalformedEvent: the event cannot be parsed (``stream_event``), or a case
                event has no case id; the cursor stays where it was.
        """
        ev = stream_event(event)
        if ev.seq <= self.state.last_event:
            return  # already processed (the stream may repeat after a reconnect)
        if ev.kind != "case":
            self.handle_other(ev)
            self.state.record(ev.seq, None, ev.kind)
            return
        self.handle_case(ev)

    def handle_other(self, ev: StreamEvent) -> None:
        """A checked, new event of another kind than ``case`` (a subclass acts on it).

        Runs before the cursor moves past ``ev``: raise ``MalformedEvent`` to have it
        reported and read again instead.
        """

    def handle_case(self, ev: StreamEvent) -> None:
        """A checked, new ``case`` event: open, hand over, record, acknowledge."""
        seq, data = ev.seq, ev.data
        case_id = data.get("case_id")
        if not isinstance(case_id, str) or "envelope" not in data:
            raise MalformedEvent(f"case event {seq} without case_id or envelope")
        if case_id is not None and self.state.seen(case_id):
            self.state.record(seq, case_id, "ok")  # announced again: not handed over twice
            self._ack(case_id)  # the first ack may have been lost; acks are idempotent
            return
        try:
            sealed = SealedCase.from_text(data["envelope"])  # the one parse of this hop
            try:
                opened = self._open(sealed, case_id)
            except WrongKeyKind:
                if not self.reload_keys():
                    raise
                opened = self._open(sealed, case_id)  # once more, with the keys read again
        except EnvelopeError as exc:
            # Not retried: a changed byte does not heal. Reported, never handed over.
            self._refuse(seq, case_id, exc)
            return
        try:
            self.on_case(ReceivedCase(seq, opened))
        except HandOffDeferred:
            raise  # not recorded: read again after a pause
        except CaseRefused as exc:
            self._refuse(seq, case_id, exc)
            return
        except Exception as exc:
            # The type only: a message may quote the content.
            self._refuse(seq, case_id, CaseRefused(type(exc).__name__))
            return
        self.state.record(seq, opened.case_id, "ok")
        self._ack(opened.case_id)

    def _open(self, sealed: SealedCase, case_id: str) -> OpenedCase:
        return open_case(
            sealed,
            hospital_id=self.hospital_id,
            hospital_key=self.hospital_key,
            device_key_for=self.device_key_for,
            expected_case_id=case_id,
        )

    def reload_keys(self) -> bool:
        """A case needs a key kind ``hospital_key`` lacks (``WrongKeyKind``): a subclass
        whose keys may have changed (a rotation) sets ``hospital_key`` anew and returns
        True to have the case opened once more; False refuses it as it is."""
        return False

    def _refuse(self, seq: int, case_id: str, exc: SyncError) -> None:
        """Record a refused case (``on_rejected``, then the cursor); not acknowledged."""
        log.warning("rejected case event %s: %s", seq, exc.code)
        if self.on_rejected is not None:
            self.on_rejected(seq, case_id, exc)  # raises: not recorded, read again
        self.state.record(seq, case_id, exc.code)

    def acknowledge(self, case_id: str) -> None:
        """Acknowledge a case handed over outside the stream (a refused case taken in
        after all): if the platform does not take it now, it is sent again like any
        deferred acknowledgement (keep-alives, the next connection)."""
        self._ack(case_id)

    def _ack(self, case_id: str) -> None:
        try:
            self.client.ack(case_id)
        except PlatformError as exc:
            # Kept in the state; retried on the next keep-alive and before the next stream.
            log.info("ack deferred (%s)", exc.code)
            self._deferred = True
            return
        self.state.mark_acked(case_id)

    def flush_acks(self) -> None:
        """Send acknowledgements that failed earlier (raises if the platform is unreachable)."""
        for case_id in self.state.unacked():
            self.client.ack(case_id)
            self.state.mark_acked(case_id)

    def _idle(self) -> None:
        """On the hub's keep-alive pings: retry deferred acks, quietly."""
        if self._deferred:
            try:
                self.flush_acks()
                self._deferred = False
            except PlatformError:
                pass

    def run_once(self, stop: threading.Event | None = None) -> None:
        """Read the stream from the stored cursor until it ends or ``stop`` is set."""
        self.flush_acks()
        self._deferred = False
        for event in self.client.events(self.state.last_event, stop, self._idle):
            if event.event == REVOKED:
                return  # this hospital was revoked: the next connection is refused
            self.handle(event)

    def run(self, stop: threading.Event) -> None:
        """Forever: reconnect with backoff after any platform error."""
        failures = 0
        while not stop.is_set():
            if self.client.http.closed:
                return  # shut down under us: nothing left to reconnect with
            try:
                self.run_once(stop)
                failures = 0
            except PlatformError as exc:
                failures += 1
                retry_after = getattr(exc, "retry_after", None)
                self.last_error = exc
                if isinstance(exc, MalformedEvent):
                    # Not skipped: reported, and read again from the last handed-over event.
                    log.warning("unreadable event on the hospital stream (%s); retrying", exc.code)
                else:
                    log.info("hospital stream interrupted (%s); reconnecting", exc.code)
                if self.on_error is not None:
                    self.on_error(exc)
                stop.wait(self.backoff.delay(failures, retry_after))
                continue
            except Exception as exc:
                # Never fatal (a store that is down, a bug): the event that failed was not
                # recorded and is read again after the pause. The type only in the log.
                failures += 1
                log.warning(
                    "hospital stream stopped by %s; reading again after a pause",
                    getattr(exc, "code", type(exc).__name__),
                )
                stop.wait(self.backoff.delay(failures))
                continue
            stop.wait(self.backoff.delay(1))
