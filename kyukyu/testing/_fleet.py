"""A fleet on real processes: hub processes, devices posting sealed cases through their
outbox, hospitals receiving them; what every party saw, counted.

Used by the load-balancer test (tests/hub_server/test_behind_haproxy.py) and the fault
runs (benchmarks/hub_faults.py). Devices and receivers are the product's own code
(``sync.Sender`` over ``sync.Outbox``, ``sync.receiver.Receiver``); only the HTTP
transport is wrapped, to count the status codes each party got.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kyukyu.testing._process import ROOT, cli_env

__all__ = [
    "CountingTransport",
    "EnrolledDevice",
    "FleetDevice",
    "FleetReceiver",
    "HubProcess",
    "RegisteredHospital",
    "make_fleet",
    "operator_http",
    "wait_for",
]


class CountingTransport(httpx.HTTPTransport):
    """An ``httpx.HTTPTransport`` that counts the status codes (and transport errors, by
    type) of what went through it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.TransportError as exc:
            with self._lock:
                self.counts[type(exc).__name__] += 1
            raise
        with self._lock:
            self.counts[str(response.status_code)] += 1
        return response

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


@dataclass
class HubProcess:
    """``kyukyu hub serve`` in a process of its own (its log in ``log``; its environment
    ``cli_env``: none of the caller's ``KYUKYU_*`` settings, ``env`` over it)."""

    args: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HubProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kyukyu", "hub", "serve", *self.args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - the child holds it
            env=cli_env(self.log.parent, PYTHONUNBUFFERED="1", **self.env),
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """kill -9 of the process (and, with ``--workers``, its workers: its group)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def operator_http(url: str, key_file: Path, **kwargs: Any) -> Any:
    """A signed operator client from the key file ``kyukyu hub init`` wrote."""
    from sync import SignedHttp
    from sync.signing import b64d

    doc = json.loads(key_file.read_text())
    key = Ed25519PrivateKey.from_private_bytes(b64d(doc["private_key"]))
    return SignedHttp(url, key=key, key_id=doc["key_id"], **kwargs)


@dataclass
class RegisteredHospital:
    id: str
    hpke: X25519PrivateKey
    signing: Ed25519PrivateKey


@dataclass
class EnrolledDevice:
    id: str
    key: Ed25519PrivateKey


def make_fleet(
    url: str, operator_key: Path, *, hospitals: int, devices: int
) -> tuple[list[RegisteredHospital], list[EnrolledDevice]]:
    """Register ``hospitals`` hospitals and enroll ``devices`` devices over the API."""
    from kyukyu.testing._world import enroll_device, register_hospital

    op = operator_http(url, operator_key)
    try:
        hs = []
        for i in range(hospitals):
            hpke, signing = X25519PrivateKey.generate(), Ed25519PrivateKey.generate()
            hid = register_hospital(
                op,
                f"病院{i}",
                35.6 + i / 100,
                139.7,
                hpke_public_key=hpke.public_key(),
                signing_public_key=signing.public_key(),
            )
            hs.append(RegisteredHospital(hid, hpke, signing))
        ds = [
            EnrolledDevice(*enroll_device(op, url, "東京消防庁", f"救急{i}"))
            for i in range(devices)
        ]
    finally:
        op.close()
    return hs, ds


class FleetDevice:
    """A device: seals cases into its outbox; a thread sends them (``sync.Sender``,
    retries and Retry-After as on the ambulance) until stopped."""

    def __init__(
        self,
        url: str,
        device: EnrolledDevice,
        hospitals: list[RegisteredHospital],
        workdir: Path,
        *,
        local_address: str | None = None,
        concurrency: int = 2,
    ) -> None:
        from sync.client import PlatformClient
        from sync.outbox import Outbox
        from sync.sender import Sender

        self.device = device
        self.hospitals = hospitals
        workdir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(workdir / f"outbox-{device.id}.db")
        self.transport = CountingTransport(local_address=local_address)
        self.client = PlatformClient(
            url,
            key=device.key,
            device_id=device.id,
            transport=self.transport,
            timeout=httpx.Timeout(10.0),
        )
        self.sender = Sender(self.outbox, self.client, concurrency=concurrency)
        self.posted: list[str] = []
        self._lock = threading.Lock()  # the outbox is single-writer: queue and send apart
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fleet-device")
        self._n = 0

    def start(self) -> FleetDevice:
        self._thread.start()
        return self

    def queue(self, n: int, *, size: int = 1024) -> list[str]:
        """Seal ``n`` cases for every hospital and put them in the outbox."""
        from sync.seal import seal_case

        pubs = {h.id: h.hpke.public_key() for h in self.hospitals}
        ids = []
        for _ in range(n):
            self._n += 1
            case_id = f"{self.device.id}-{self._n:06d}"
            sealed = seal_case(
                os.urandom(size),
                case_id=case_id,
                device_id=self.device.id,
                device_key=self.device.key,
                recipients=pubs,
            )
            with self._lock:
                self.outbox.enqueue(sealed)
            ids.append(case_id)
        self.posted.extend(ids)
        return ids

    def pending(self) -> int:
        with self._lock:
            return self.outbox.pending_count()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                sent, failed = self.sender.send_due()
                next_at = self.outbox.next_due_at() if not sent else None
            if not sent and not failed:
                wait = 0.05 if next_at is None else min(max(next_at - time.time(), 0.01), 0.2)
                self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.sender.close()
        self.client.close()
        self.outbox.close()


class FleetReceiver:
    """A hospital's receiver (``sync.receiver.Receiver``) on a thread: every case it
    handed over, in order (a case handed over twice shows twice)."""

    def __init__(
        self,
        url: str,
        hospital: RegisteredHospital,
        devices: list[EnrolledDevice],
        workdir: Path,
        *,
        local_address: str | None = None,
    ) -> None:
        from sync.receiver import HospitalClient, Receiver, ReceiverState

        keys = {d.id: d.key.public_key() for d in devices}
        workdir.mkdir(parents=True, exist_ok=True)
        self.hospital = hospital
        self.transport = CountingTransport(local_address=local_address)
        self.client = HospitalClient(
            url, hospital_id=hospital.id, key=hospital.signing, transport=self.transport
        )
        self.state = ReceiverState(workdir / f"receiver-{hospital.id}.db")
        self.handed: list[str] = []
        self._lock = threading.Lock()
        self._gate = threading.Event()  # cleared: the hospital stops taking cases (paused)
        self._gate.set()
        self.receiver = Receiver(
            self.client,
            hospital_key=hospital.hpke,
            device_key_for=lambda device_id: keys[device_id],
            state=self.state,
            on_case=self._on_case,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.receiver.run, args=(self._stop,), daemon=True)

    def _on_case(self, case: Any) -> None:
        self._gate.wait()  # paused: the stream is not read meanwhile, as a stalled hospital
        with self._lock:
            self.handed.append(case.case_id)

    def pause(self) -> None:
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    def start(self) -> FleetReceiver:
        self._thread.start()
        return self

    def received(self) -> list[str]:
        with self._lock:
            return list(self.handed)

    def stop(self) -> None:
        self._stop.set()
        self._gate.set()
        self.client.close()
        self._thread.join(30)
        self.state.close()


def wait_for(predicate: Any, timeout: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
