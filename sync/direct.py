"""The direct route: when the platform is cut off, cases go straight to their hospitals.

Every device holds the hub-signed hospital directory; where the operator opted a region
in, it carries each hospital's direct address (HTTPS) and the TLS certificate the device
pins for it. When the platform has been out for ``unreachable_seconds`` (default 60) and
rows wait in the outbox, ``DirectRoute.deliver`` posts each waiting row (the sealed case,
then its intents, in order) to each recipient hospital that has not got it yet, signed by
the device as on the platform. The row stays in the outbox: once the platform answers
again, ``sync.Sender`` posts it there too (same case id, same ``Idempotency-Key``,
``X-Kyukyu-Route: direct``), so the platform holds every case once and the hospital,
which stores by case id, shows it once. ``DirectRoute.poll_answers`` reads each
hospital's answer feed meanwhile (受入可 / 受入不可 reach the crew without the platform).

A hospital that cannot be reached is tried again after its own pause (full jitter); a
hospital that refuses a row for good (a 4xx) is not asked again for it, and the row
still goes to the platform. See docs/disaster.md.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync._backoff import Backoff
from sync._errors import HttpStatusError, OutboxError, PlatformError
from sync._http import SignedHttp
from sync.envelope import envelope_to_text
from sync.outbox import Outbox, PendingCase

__all__ = [
    "DEFAULT_UNREACHABLE_SECONDS",
    "DirectClient",
    "DirectHospital",
    "DirectRoute",
    "direct_hospitals",
    "pinned_certificate_context",
]

log = logging.getLogger("sync.direct")

#: How long the platform must have been out before cases take the direct route.
DEFAULT_UNREACHABLE_SECONDS = 60.0


@dataclass(frozen=True)
class DirectHospital:
    """A hospital's direct address, from the signed directory."""

    id: str
    url: str
    tls_cert: str  # PEM: the one certificate this address may present


def pinned_certificate_context(cert_pem: str) -> ssl.SSLContext:
    """TLS that trusts exactly this certificate (pinned from the signed directory); the
    host name is not checked because the certificate itself is the trust."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=cert_pem)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class DirectClient:
    """The device's calls to one hospital's direct endpoint (``hospital.direct``)."""

    def __init__(
        self,
        hospital: DirectHospital,
        *,
        key: Ed25519PrivateKey,
        device_id: str,
        timeout: Any = None,
        verify: ssl.SSLContext | bool | None = None,
    ) -> None:
        self.hospital = hospital
        self.http = SignedHttp(
            hospital.url,
            key=key,
            key_id=f"device:{device_id}",
            verify=verify if verify is not None else pinned_certificate_context(hospital.tls_cert),
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def post(self, row: PendingCase) -> None:
        """One outbox row (case, closure or destination) to this hospital."""
        if row.kind == "case":
            self.http.request(
                "POST",
                "/direct/v1/cases",
                body={
                    "case_id": row.case_id,
                    "recipients": list(row.recipients),
                    "envelope": envelope_to_text(row.envelope),
                },
                headers={"Idempotency-Key": row.idempotency_key},
                ok=(200, 201),
            )
        elif row.kind == "closure":
            self.http.request(
                "POST",
                f"/direct/v1/cases/{row.case_id}/closure",
                body={
                    "recipients": list(row.recipients),
                    "envelope": envelope_to_text(row.envelope),
                },
                ok=(200, 201),
            )
        else:
            body = json.loads(row.envelope)
            self.http.request(
                "POST",
                f"/direct/v1/cases/{row.case_id}/destination",
                body={
                    "hospital_id": str(body["hospital_id"]),
                    "via": str(body.get("via", "answer")),
                },
                ok=(200, 201),
            )

    def answers(self, after: int) -> list[dict[str, Any]]:
        """The answers to this device's cases after answer number ``after``."""
        out = self.http.request_json("GET", "/direct/v1/answers", params={"after": after})
        items = out.get("answers") if isinstance(out, dict) else None
        return [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []


def direct_hospitals(directory: Iterable[Any]) -> list[DirectHospital]:
    """The hospitals of a signed directory (``sync.client.DirectoryHospital``) that have a
    direct address (their region opted in)."""
    return [
        DirectHospital(h.id, h.direct_url, h.direct_tls_cert)
        for h in directory
        if getattr(h, "direct_url", None) and getattr(h, "direct_tls_cert", None)
    ]


def _time(value: object) -> float:
    """An answer's time as sent, or now when it is not one (an out-of-range year too)."""
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except (ValueError, OverflowError, OSError):
        return time.time()


class DirectRoute:
    """Deliver waiting outbox rows straight to their hospitals; read their answers."""

    def __init__(
        self,
        outbox: Outbox,
        hospitals: Iterable[DirectHospital],
        *,
        key: Ed25519PrivateKey,
        device_id: str,
        unreachable_seconds: float = DEFAULT_UNREACHABLE_SECONDS,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        timeout: Any = None,
        poll_seconds: float = 2.0,
    ) -> None:
        self.outbox = outbox
        self.unreachable_seconds = unreachable_seconds
        self.poll_seconds = poll_seconds
        self._polled_at = -float("inf")
        self._clock = clock
        self.backoff = backoff or Backoff(base=0.5, cap=10.0)
        self._key, self._device_id, self._timeout = key, device_id, timeout
        self.clients: dict[str, DirectClient] = {}
        self.set_hospitals(hospitals)
        #: Deliveries and new answers so far: a caller that shows them watches this grow.
        self.changes = 0
        self._failures: dict[str, int] = {}
        self._next_try: dict[str, float] = {}
        self._lock = threading.Lock()
        #: Rows delivered by the direct route so far (each hospital counts).
        self.delivered = 0
        self.first_delivery_at: float | None = None

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def set_hospitals(self, hospitals: Iterable[DirectHospital]) -> None:
        """The hospitals with a direct address (a newer signed directory)."""
        wanted = {h.id: h for h in hospitals}
        old = self.clients
        kept = {i: c for i, c in old.items() if wanted.get(i) == c.hospital}
        for i, c in old.items():
            if i not in kept:
                c.close()
        clients: dict[str, DirectClient] = {}
        for i, h in wanted.items():
            client = kept.get(i)
            if client is None:
                try:
                    client = DirectClient(
                        h, key=self._key, device_id=self._device_id, timeout=self._timeout
                    )
                except (ssl.SSLError, ValueError):
                    # One hospital's unusable certificate must not stop the route (nor the
                    # device's boot, nor a directory refresh) for every other hospital.
                    log.warning("hospital %s: its direct certificate is unusable; skipped", i)
                    continue
            clients[i] = client
        self.clients = clients

    def _reachable_now(self, hospital_id: str, now: float) -> bool:
        return now >= self._next_try.get(hospital_id, 0.0)

    def _failed(self, hospital_id: str, now: float) -> None:
        n = self._failures.get(hospital_id, 0) + 1
        self._failures[hospital_id] = n
        self._next_try[hospital_id] = now + self.backoff.delay(n)

    def deliver(self) -> int:
        """One round: every waiting row to every recipient with a direct address that does
        not have it yet, a case's rows in order (an intent only after that hospital got
        the case and the intents before it). Returns how many deliveries succeeded."""
        with self._lock:
            return self._deliver()

    def _deliver(self) -> int:
        done = 0
        blocked: set[tuple[str, str]] = set()  # (case, hospital): an earlier row waits
        down: set[str] = set()
        clients = self.clients
        if not clients:
            return 0  # no hospital has a direct address: nothing to read every second
        for listed in self.outbox.waiting(envelopes=False):
            if not any(h in clients for h in listed.recipients):
                continue
            have = self.outbox.direct.done(listed.case_id, listed.kind)
            row: PendingCase | None = None  # its envelope, read once a post is due
            for hospital_id in listed.recipients:
                client = clients.get(hospital_id)
                if client is None or hospital_id in have:
                    continue
                if (listed.case_id, hospital_id) in blocked or hospital_id in down:
                    blocked.add((listed.case_id, hospital_id))
                    continue
                now = self._clock()
                if not self._reachable_now(hospital_id, now):
                    down.add(hospital_id)
                    blocked.add((listed.case_id, hospital_id))
                    continue
                if row is None:
                    row = self.outbox.row(listed.case_id, listed.kind)
                    if row is None:
                        # The platform took it meanwhile: its later rows wait for a next
                        # round, as after a failure (a case's rows go in order).
                        blocked.update((listed.case_id, h) for h in listed.recipients)
                        break
                try:
                    client.post(row)
                except HttpStatusError as exc:
                    if 400 <= exc.status < 500 and exc.status not in (408, 429):
                        code = getattr(exc, "hub_code", None) or exc.code
                        log.warning("%s refused by a hospital's direct route (%s)", row.kind, code)
                        self.outbox.direct.mark(
                            row.case_id, row.kind, hospital_id, f"refused:{code}"
                        )
                        continue
                    self._failed(hospital_id, now)
                    down.add(hospital_id)
                    blocked.add((row.case_id, hospital_id))
                    continue
                except PlatformError as exc:
                    log.info("a hospital's direct route is unreachable (%s)", exc.code)
                    self._failed(hospital_id, now)
                    down.add(hospital_id)
                    blocked.add((row.case_id, hospital_id))
                    continue
                self._failures.pop(hospital_id, None)
                self.outbox.direct.mark(row.case_id, row.kind, hospital_id)
                if row.kind == "case":
                    # The hospital has it: 病院に到着, as the platform's ``received`` says.
                    self.outbox.direct.apply_answer(hospital_id, 0, row.case_id, "received", now)
                done += 1
                self.delivered += 1
                self.changes += 1
                if self.first_delivery_at is None:
                    self.first_delivery_at = now
                    log.warning("the platform is out: cases take the direct route")
        return done

    def round(self) -> int:
        """Deliver what waits, and read the answer feeds at most every ``poll_seconds``."""
        done = self.deliver()
        now = self._clock()
        if now - self._polled_at >= self.poll_seconds:
            self._polled_at = now
            self.poll_answers()
        return done

    def poll_answers(self) -> int:
        """Read the direct answer feed of each hospital that got a case by this route once
        (a hospital that got none has no answer for this device); the number of new
        answers. A feed that cannot be read waits out the hospital's pause, as a delivery
        does (the sender's one thread is not held by an unreachable hospital each time)."""
        new = 0
        now = self._clock()
        clients = self.clients
        if not clients:
            return 0
        holders = self.outbox.direct.holders()
        for hospital_id, client in list(clients.items()):
            if hospital_id not in holders or not self._reachable_now(hospital_id, now):
                continue
            try:
                items = client.answers(self.outbox.direct.after(hospital_id))
            except PlatformError as exc:
                log.info("a hospital's direct answer feed is unreachable (%s)", exc.code)
                self._failed(hospital_id, now)
                continue
            self._failures.pop(hospital_id, None)
            for item in items:
                try:
                    if self.outbox.direct.apply_answer(
                        hospital_id,
                        int(item["seq"]),
                        str(item["case_id"]),
                        str(item["answer"]),
                        _time(item.get("answered_at")),
                        item.get("reason") if isinstance(item.get("reason"), str) else None,
                    ):
                        new += 1
                        self.changes += 1
                except (KeyError, TypeError, ValueError, OverflowError, OutboxError):
                    # A number SQLite cannot hold is an OverflowError: one bad answer
                    # never stops the feed or the sender's round.
                    log.warning("a direct answer was skipped (malformed)")
        return new
