"""A database outage on real processes: ``kyukyu hub serve --workers 2`` on a PostgreSQL
cluster of the test's own (stopped and started; never the shared server), four devices
(``sync.Outbox`` + ``sync.Sender``) and two hospital receivers (``sync.Receiver``).

While the database is down every route answers 503 with ``Retry-After`` and the code of
the outage, never a 500; each worker writes one line when the outage starts and one when
it ends; the devices' queued cases are all accepted within seconds of the database's
return and every case reaches both hospitals exactly once. The run's log (JSON lines of
the supervisor and both workers, in ``--log-file``) holds no patient data, nonce, key or
envelope bytes; the metrics count the 503s by route and pass ``promtool check metrics``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub_server.core.outage import KINDS
from kyukyu.testing import (
    Operator,
    PgCluster,
    enroll_device,
    pg_cluster,
    register_hospital,
    wait_until_serving,
)
from sync import HttpStatusError, PlatformError, SignedHttp
from sync.client import PlatformClient
from sync.outbox import Outbox
from sync.receiver import HospitalClient, Receiver, ReceiverState
from sync.seal import seal_json
from sync.sender import Sender
from sync.signing import b64d, b64e
from tests.hub_server._promtool import promtool

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DEVICES = 4
HOSPITALS = 2
PATIENT = {"name": "救急　花子", "birth": "1951-03-14", "phone": "090-1234-5678"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Recording(httpx.HTTPTransport):
    """Keeps every nonce the devices send (the log scan looks for them)."""

    def __init__(self, nonces: list[str]) -> None:
        super().__init__()
        self.nonces = nonces

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        nonce = request.headers.get("x-kyukyu-nonce")
        if nonce:
            self.nonces.append(nonce)
        return super().handle_request(request)


class _Poster:
    """The device's client, counting the answers its case posts got."""

    def __init__(self, client: PlatformClient, seen: Counter[str]) -> None:
        self.client = client
        self.seen = seen
        self._lock = threading.Lock()

    def _note(self, what: str) -> None:
        with self._lock:
            self.seen[what] += 1

    def post_case(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            out = self.client.post_case(*args, **kwargs)
        except HttpStatusError as exc:
            ra = "retry-after" if exc.retry_after else "no retry-after"
            self._note(f"{exc.status} {exc.hub_code} {ra}")
            raise
        except PlatformError as exc:
            self._note(exc.code)
            raise
        self._note("201")
        return out

    def set_destination(self, *args: Any, **kwargs: Any) -> None:
        self.client.set_destination(*args, **kwargs)

    def post_closure(self, *args: Any, **kwargs: Any) -> None:
        self.client.post_closure(*args, **kwargs)


@contextlib.contextmanager
def _hub(pg: PgCluster, tmp: Path, roots_dir: Path) -> Iterator[tuple[str, int, Path, Any]]:
    port, metrics_port = _free_port(), _free_port()
    log = tmp / "hub.log"
    err = (tmp / "hub.err").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "kyukyu", "hub", "serve", "--db", pg.url(), "--env", "test",
            "--key", str(tmp / "hub.key"), "--trust-roots", str(roots_dir),
            "--allow-test-roots", "--workers", "2", "--port", str(port),
            "--metrics-port", str(metrics_port), "--log-file", str(log),
        ],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, why=lambda: (tmp / "hub.err").read_text()[-3000:])
        yield url, metrics_port, log, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        err.close()


def _operator(pg: PgCluster, tmp: Path) -> Operator:
    out = tmp / "operator.json"
    r = subprocess.run(
        [sys.executable, "-m", "kyukyu", "hub", "init", "--db", pg.url(), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    creds = json.loads(out.read_text())
    key = Ed25519PrivateKey.from_private_bytes(b64d(creds["private_key"]))
    return Operator(key, creds["key_id"].split(":", 1)[1])


def _wait(condition: Any, timeout: float, what: str) -> float:
    """Poll ``condition`` until true; the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic()


def test_database_outage_answers_503_and_queued_cases_go_out_on_recovery(
    tmp_path: Path, roots_dir: Path
) -> None:
    with pg_cluster(fsync=False) as pg:
        operator = _operator(pg, tmp_path)
        with _hub(pg, tmp_path, roots_dir) as (url, metrics_port, log, _proc):
            _run(pg, url, metrics_port, log, operator, tmp_path)


def _run(
    pg: PgCluster, url: str, metrics_port: int, log: Path, operator: Operator, tmp: Path
) -> None:
    op = operator.http(url)
    hub_key = PlatformClient(url, key=Ed25519PrivateKey.generate()).fetch_hub_key()
    # Two hospitals with real receivers, reconnecting on their own.
    hospitals: list[tuple[str, Ed25519PrivateKey, X25519PrivateKey]] = []
    for i in range(HOSPITALS):
        skey, hkey = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
        hid = register_hospital(
            op, f"病院{i}", 35.0 + i / 100, 139.0,
            hpke_public_key=hkey.public_key(), signing_public_key=skey.public_key(),
        )  # fmt: skip
        hospitals.append((hid, skey, hkey))
    recipients = {hid: hkey.public_key() for hid, _, hkey in hospitals}
    # Four devices, each with its outbox and sender (the device's own code path).
    nonces: list[str] = []
    seen: Counter[str] = Counter()
    devices: list[tuple[str, Ed25519PrivateKey, Outbox, Sender]] = []
    for i in range(DEVICES):
        device_id, dkey = enroll_device(op, url, "東京消防庁", f"救急{i}", hub_key)
        client = PlatformClient(url, key=dkey, device_id=device_id, transport=_Recording(nonces))
        outbox = Outbox(tmp / f"device{i}.db")
        devices.append((device_id, dkey, outbox, Sender(outbox, _Poster(client, seen))))
    device_keys = {device_id: dkey.public_key() for device_id, dkey, _, _ in devices}
    envelopes: list[bytes] = []
    counter = iter(range(10_000))

    def queue(n: int) -> None:
        for device_id, dkey, outbox, _ in devices:
            for _ in range(n):
                case_id = f"case-{next(counter)}"
                bundle = {"resourceType": "Bundle", "type": "document", "patient": PATIENT}
                sealed = seal_json(
                    bundle, case_id=case_id, device_id=device_id, device_key=dkey,
                    recipients=recipients,
                )  # fmt: skip
                envelopes.append(sealed)
                outbox.enqueue(sealed)

    stop = threading.Event()
    received: dict[str, list[str]] = {hid: [] for hid, _, _ in hospitals}
    threads = []
    for hid, skey, hkey in hospitals:
        receiver = Receiver(
            HospitalClient(url, hospital_id=hid, key=skey),
            hospital_key=hkey,
            device_key_for=device_keys.get,
            state=ReceiverState(tmp / f"{hid}.db"),
            on_case=lambda case, hid=hid: received[hid].append(case.case_id),
        )
        threads.append(threading.Thread(target=receiver.run, args=(stop,), daemon=True))
    for _, _, _, sender in devices:
        threads.append(threading.Thread(target=_send_loop, args=(sender, stop), daemon=True))
    for t in threads:
        t.start()

    def pending() -> int:
        return sum(outbox.pending_count() for _, _, outbox, _ in devices)

    try:
        queue(3)  # before the outage: every device's key is known to the hub
        _wait(lambda: pending() == 0, 30, "the first cases")
        pg.stop("fast")
        # Every kind of route answers the outage honestly.
        _check_routes_during_outage(url, hospitals[0], devices[0], op)
        for _ in range(4):  # cases keep coming in during the outage
            queue(3)
            time.sleep(1.0)
        assert pending() > 0
        assert seen["201"] == 3 * DEVICES
        pg.start()
        back = time.monotonic()
        done = _wait(lambda: pending() == 0, 60, "the queued cases after recovery")
        recovery = done - back
        total = len(envelopes)
        _wait(lambda: all(len(v) >= total for v in received.values()), 60, "delivery")
        time.sleep(0.5)  # a duplicate would show now
    finally:
        stop.set()
    print(
        json.dumps(
            {"queued_during_outage": 12 * DEVICES, "recovery_seconds": round(recovery, 2),
             "answers": dict(seen)}
        )
    )  # fmt: skip
    # Every queued case accepted within a few seconds of the database's return.
    assert recovery < 10.0, recovery
    # Exactly once to both hospitals.
    for hid, ids in received.items():
        assert sorted(ids) == sorted(set(ids)), f"duplicates at {hid}"
        assert len(ids) == total
    # Only 201s and honest 503s (with Retry-After and the outage's code); never a 500.
    for answer in seen:
        assert answer == "201" or (
            answer.startswith("503 ") and answer.split()[1] in KINDS
            and answer.endswith(" retry-after")
        ), seen  # fmt: skip
    assert any(a.startswith("503 ") for a in seen)
    metrics = _settled_metrics(metrics_port)
    _check_metrics(metrics)
    _check_log(log, nonces, envelopes, devices)


def _check_routes_during_outage(
    url: str, hospital: tuple[str, Ed25519PrivateKey, X25519PrivateKey],
    device: tuple[str, Ed25519PrivateKey, Outbox, Sender], op: SignedHttp,
) -> None:  # fmt: skip
    hid, skey, _ = hospital
    device_id, dkey, _, _ = device
    dev = SignedHttp(url, key=dkey, key_id=f"device:{device_id}")
    hos = SignedHttp(url, key=skey, key_id=f"hospital:{hid}")
    checks = [
        ("device GET /v1/devices/me", lambda: dev.request("GET", "/v1/devices/me")),
        ("device directory", lambda: dev.request("GET", "/v1/hospitals/directory?lat=35&lon=139")),
        ("operator audit", lambda: op.request("GET", "/v1/audit")),
        ("unsigned challenge", lambda: httpx.post(f"{url}/v1/patients/challenges")),
        ("hospital stream", lambda: _open(hos, "/v1/hospitals/me/events")),
        ("device stream", lambda: _open(dev, "/v1/devices/me/events")),
    ]
    for what, call in checks:
        try:
            r = call()
        except HttpStatusError as exc:
            status, code, retry = exc.status, exc.hub_code, exc.retry_after
        else:
            status = r.status_code
            code = r.json()["error"]["code"] if status >= 400 else None
            retry = r.headers.get("retry-after")
        assert status == 503, (what, status, code)
        assert code in KINDS, (what, code)
        assert retry, what


def _open(http: SignedHttp, path: str) -> httpx.Response:
    """Open an event stream and leave at its first line (raises on a refusal)."""
    ended = threading.Event()
    ended.set()
    list(http.events(path, stop=ended))
    return httpx.Response(200)


def _send_loop(sender: Sender, stop: threading.Event) -> None:
    """The device's send loop (edge.flow's Delivery): rounds until the outbox is empty or
    nothing is due for a while, then a short pause."""
    while not stop.is_set():
        sender.drain(stop=stop, max_idle_wait=1.0)
        stop.wait(0.2)


def _metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def _settled_metrics(port: int, timeout: float = 30.0) -> str:
    """The scrape once the workers are back: the event listener reconnects on its own
    backoff (up to 10 s) and each worker's outage gauge clears at its next probe; waited
    for, never assumed (``_check_metrics`` then says what did not settle)."""
    from hub_server.core.metrics import families

    deadline = time.monotonic() + timeout
    while True:
        text = _metrics(port)
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families(text)
            for s in f.samples
        }
        outage = [v for (n, _), v in samples.items() if n == "kyukyu_hub_outage"]
        listening = samples.get(("kyukyu_hub_listener_connected", ())) == 1
        if (listening and outage and max(outage) == 0) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def _check_metrics(text: str) -> None:
    from hub_server.core.metrics import families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families(text)
        for s in f.samples
    }
    by_status: Counter[str] = Counter()
    for (name, labels), value in samples.items():
        if name == "kyukyu_hub_responses_total":
            by_status[dict(labels)["status"]] += int(value)
    assert by_status["503"] > 0, by_status
    assert by_status["201"] > 0, by_status
    assert by_status["500"] == 0, by_status
    outage = [v for (n, _), v in samples.items() if n == "kyukyu_hub_outage"]
    assert outage
    assert max(outage) == 0  # both workers saw the end of the outage
    assert samples[("kyukyu_hub_database_up", ())] == 1
    assert samples[("kyukyu_hub_listener_connected", ())] == 1
    r = promtool("check", "metrics", stdin=text)
    assert r.returncode == 0, r.stdout + r.stderr


def _check_log(
    log: Path, nonces: list[str], envelopes: list[bytes], devices: list[Any]
) -> None:  # fmt: skip
    lines = log.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    pids = {r["pid"] for r in records}
    assert len(pids) >= 3, pids  # the supervisor and both workers write to --log-file
    assert all({"time", "level", "logger", "pid", "message"} <= r.keys() for r in records)
    access = [r for r in records if r["logger"] == "hub_server.access"]
    assert {r["route"] for r in access} >= {"/v1/cases", "/v1/hospitals/me/events"}
    assert any(r["status"] == 503 and r["route"] == "/v1/cases" for r in access)
    assert all(r["status"] != 500 for r in access)
    assert any(str(r.get("identity", "")).startswith("device:") for r in access)
    assert all("?" not in r["route"] for r in access)
    # One line per outage change and process, not one per request.
    changes = Counter((r["pid"], r["state"]) for r in records if r["logger"] == "hub_server.outage")
    workers = {pid for pid, state in changes if state == "started"}
    assert workers, "no worker logged the outage"
    for pid in workers:
        assert changes[(pid, "started")] == 1, changes
        assert changes[(pid, "ended")] == 1, changes
    assert not [r for r in records if r["level"] == "ERROR"], "an error was logged"
    # Nothing of a case, a patient, a nonce or a key.
    text = log.read_text(encoding="utf-8")
    for value in PATIENT.values():
        assert value not in text
    assert "花子" not in text
    for nonce in nonces:
        assert nonce not in text
    for sealed in envelopes:
        for encoded in (base64.b64encode(sealed).decode(), b64e(sealed)):
            for i in range(0, len(encoded) - 24, 97):
                assert encoded[i : i + 24] not in text
    for _, dkey, _, _ in devices:
        from cryptography.hazmat.primitives import serialization

        raw = dkey.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        assert b64e(raw) not in text
        assert base64.b64encode(raw).decode() not in text
