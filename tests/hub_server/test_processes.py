"""Real hub processes (uvicorn) on one PostgreSQL: cross-process push, CLI, and clean logs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyukyu.testing import wait_until_serving
from sync.signing import b64d
from tests.components import fresh_postgres_database
from tests.hub_server._support import (
    Signer,
    card_signature,
    encode,
    new_key,
    pub,
    sse_events,
    x25519_pub,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    urls: list[str]
    logs: list[Path]
    db_url: str
    operator: Signer
    card: Any


def _kyukyu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kyukyu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, roots_dir: Path, ca_dir: Path, test_ca: Any
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    with fresh_postgres_database() as db_url:
        key_file = tmp / "operator.json"
        r = _kyukyu("hub", "init", "--db", db_url, "--out", str(key_file))
        assert r.returncode == 0, r.stderr
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        creds = json.loads(key_file.read_text())
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        operator = Signer(
            creds["key_id"], Ed25519PrivateKey.from_private_bytes(b64d(creds["private_key"]))
        )
        r = _kyukyu(
            "hub",
            "seed",
            "--db",
            db_url,
            "--patients",
            "20",
            "--cards",
            "1",
            "--cards-dir",
            str(tmp / "cards"),
            "--ca-dir",
            str(ca_dir),
        )
        assert r.returncode == 0, r.stderr
        from edge.card_sim import CardImage

        card = CardImage.load(next((tmp / "cards").glob("card-*.json")))
        procs, urls, logs = [], [], []
        for i in range(2):
            port = _free_port()
            log = tmp / f"hub{i}.log"
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "kyukyu",
                        "-vv",
                        "hub",
                        "serve",
                        "--db",
                        db_url,
                        "--port",
                        str(port),
                        "--env",
                        "test",
                        "--key",
                        str(tmp / "hub.key"),
                        "--trust-roots",
                        str(roots_dir),
                        "--allow-test-roots",
                        "--log-file",
                        str(log),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=open(log.with_suffix(".err"), "w"),  # noqa: SIM115
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
            logs.extend([log, log.with_suffix(".err")])
        try:
            for url, proc in zip(urls, procs, strict=True):
                wait_until_serving(
                    url,
                    proc,
                    why=lambda: " ".join(p.read_text()[-2000:] for p in logs if p.exists()),
                )
            yield Cluster(urls, logs, db_url, operator, card)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


async def _call(
    client: httpx.AsyncClient,
    signer: Signer | None,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = b"" if body is None else encode(body)
    h = {"content-type": "application/json"} if body is not None else {}
    if signer is not None:
        h.update(signer.headers(method, path, raw))
    h.update(headers or {})
    return await client.request(method, path, content=raw, headers=h)


async def _world(a: httpx.AsyncClient, operator: Signer) -> tuple[Signer, str, Signer]:
    r = await _call(a, operator, "POST", "/v1/enrollment-tokens", {"fire_department": "東京消防庁"})
    assert r.status_code == 201, r.text
    dkey = new_key()
    r = await _call(
        a,
        None,
        "POST",
        "/v1/devices/enroll",
        {"token": r.json()["token"], "public_key": pub(dkey), "name": "救急1"},
    )
    device = Signer(f"device:{r.json()['device_id']}", dkey)
    hkey = new_key()
    r = await _call(
        a,
        operator,
        "POST",
        "/v1/hospitals",
        {
            "name": "病院",
            "lat": 35.7,
            "lon": 139.7,
            "hpke_public_key": x25519_pub(),
            "signing_public_key": pub(hkey),
        },
    )
    hid = r.json()["hospital_id"]
    return device, hid, Signer(f"hospital:{hid}", hkey)


def test_case_posted_to_one_process_reaches_a_hospital_streaming_from_the_other(
    cluster: Cluster,
) -> None:
    async def scenario() -> None:
        async with (
            httpx.AsyncClient(base_url=cluster.urls[0], timeout=30) as a,
            httpx.AsyncClient(base_url=cluster.urls[1], timeout=30) as b,
        ):
            device, hid, hospital = await _world(a, cluster.operator)
            path = "/v1/hospitals/me/events"
            async with b.stream("GET", path, headers=hospital.headers("GET", path)) as stream:
                assert stream.status_code == 200
                await asyncio.sleep(0.3)  # the stream is registered on process B
                envelope = secrets.token_bytes(4096)
                body = {
                    "case_id": "x-proc",
                    "recipients": [hid],
                    "envelope": base64.b64encode(envelope).decode(),
                }
                r = await _call(a, device, "POST", "/v1/cases", body, {"Idempotency-Key": "xp-1"})
                assert r.status_code == 201, r.text
                [(seq, kind, data)] = await asyncio.wait_for(sse_events(stream, 1), 15)
                # Too big to ride in the notification: process B reads it from the database.
                big = secrets.token_bytes(12000)
                body = {
                    "case_id": "x-big",
                    "recipients": [hid],
                    "envelope": base64.b64encode(big).decode(),
                }
                r = await _call(a, device, "POST", "/v1/cases", body, {"Idempotency-Key": "xp-2"})
                assert r.status_code == 201, r.text
                [(seq2, _, data2)] = await asyncio.wait_for(sse_events(stream, 1), 15)
            assert (seq, kind, data["case_id"]) == (1, "case", "x-proc")
            assert base64.b64decode(data["envelope"]) == envelope
            assert (seq2, data2["case_id"]) == (2, "x-big")
            assert base64.b64decode(data2["envelope"]) == big
            # The answer goes the other way: hospital on A, device streaming from B.
            dpath = "/v1/devices/me/events"
            async with b.stream("GET", dpath, headers=device.headers("GET", dpath)) as dstream:
                await asyncio.sleep(0.3)
                r = await _call(
                    a, hospital, "POST", "/v1/cases/x-proc/answers", {"answer": "accept"}
                )
                assert r.status_code == 201
                [(_, kind, data)] = await asyncio.wait_for(sse_events(dstream, 1), 15)
            assert kind == "answer"
            assert data["answer"] == "accept"
            # A replayed request is refused by the other process too (shared nonce table).
            h = device.headers("GET", "/v1/devices/me")
            assert (await a.get("/v1/devices/me", headers=h)).status_code == 200
            assert (await b.get("/v1/devices/me", headers=h)).status_code == 401

    asyncio.run(scenario())


def test_no_patient_data_in_server_logs(cluster: Cluster) -> None:
    card = cluster.card

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=cluster.urls[0], timeout=30) as a:
            device, _, _ = await _world(a, cluster.operator)
            cert = base64.b64encode(card.auth_certificate_der).decode()
            ch = (await _call(a, device, "POST", "/v1/challenges")).json()
            req = {
                "certificate": cert,
                "consent": "consented",
                "crew_member": "隊員",
                "evidence": {
                    "kind": "pin_signature",
                    "challenge_id": ch["challenge_id"],
                    "signature": card_signature(card, ch["nonce"]),
                },
            }
            r = await _call(a, device, "POST", "/v1/summaries", req)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "found"
            bundle_text = json.dumps(r.json()["bundle"], ensure_ascii=False)
            # Also errors: a bad certificate and a malformed body must not echo patient data.
            await _call(a, device, "POST", "/v1/summaries", {**req, "certificate": cert[:-40]})
            await _call(a, device, "POST", "/v1/summaries", {**req, "consent": card.holder.name})
            ch2 = (await a.post("/v1/patients/challenges")).json()
            await _call(
                a,
                None,
                "POST",
                "/v1/patients/history",
                {
                    "certificate": cert,
                    "challenge_id": ch2["challenge_id"],
                    "signature": card_signature(card, ch2["nonce"]),
                },
            )
            return bundle_text

    bundle_text = asyncio.run(scenario())

    def logged() -> str:
        return "".join(p.read_text(errors="replace") for p in cluster.logs if p.exists())

    # The last request's access line is written: the log holds every request above (the
    # deadline only bounds a hang; a loaded machine may take a while to flush).
    deadline = time.monotonic() + 30
    while "POST /v1/patients/history" not in (text := logged()):
        assert time.monotonic() < deadline, text[-2000:]
        time.sleep(0.05)
    assert "POST /v1/summaries" in text  # the access log is on: the search is meaningful
    cn = card.auth_certificate.subject.rfc4514_string()
    secrets_ = {
        "name": card.holder.name,
        "family name": card.holder.name.split("\u3000")[0],
        "address": card.holder.address,
        "birth date": card.holder.birth_date.isoformat(),
        "certificate subject": cn.split("CN=")[-1].split(",")[0],
        "my number": card.my_number,
    }
    assert card.holder.name.split("\u3000")[0] in bundle_text  # the summary did carry the name
    for what, value in secrets_.items():
        assert value not in text, f"{what} found in the server log"


def test_sync_client_and_receiver_end_to_end_across_processes(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The real seam: sync.client seals and posts on hub A; sync.receiver opens it from hub B."""
    import threading

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from sync.client import PlatformClient
    from sync.receiver import HospitalClient, Receiver, ReceiverState
    from sync.seal import seal_json

    async def setup() -> tuple[str, str, Any, Any]:
        async with httpx.AsyncClient(base_url=cluster.urls[0], timeout=30) as a:
            r = await _call(
                a, cluster.operator, "POST", "/v1/enrollment-tokens", {"fire_department": "消防"}
            )
            token = r.json()["token"]
            hkey, hpke = new_key(), X25519PrivateKey.generate()
            from cryptography.hazmat.primitives import serialization

            raw = hpke.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            from sync.signing import b64e

            body = {
                "name": "救命センター",
                "lat": 35.0,
                "lon": 139.0,
                "hpke_public_key": b64e(raw),
                "signing_public_key": pub(hkey),
            }
            r = await _call(a, cluster.operator, "POST", "/v1/hospitals", body)
            return token, r.json()["hospital_id"], hkey, hpke

    token, hid, hkey, hpke = asyncio.run(setup())
    dkey = new_key()
    device = PlatformClient(cluster.urls[0], key=dkey)
    device_id = device.enroll(token, "救急隊")
    device.hub_public_key = device.fetch_hub_key()
    directory = device.hospital_directory(35.0, 139.0)
    assert hid in [h.id for h in directory]
    recipients = {h.id: h.hpke_public_key for h in directory if h.id == hid}
    bundle = {"resourceType": "Bundle", "type": "document", "entry": []}
    envelope = seal_json(
        bundle, case_id="e2e-1", device_id=device_id, device_key=dkey, recipients=recipients
    )
    device.post_case("e2e-1", [hid], envelope, idempotency_key="e2e-key")
    device.post_case("e2e-1", [hid], envelope, idempotency_key="e2e-key")  # a retry: same answer

    received: list[Any] = []
    stop = threading.Event()

    def on_case(case: Any) -> None:
        received.append(case)
        stop.set()

    receiver = Receiver(
        HospitalClient(cluster.urls[1], hospital_id=hid, key=hkey),
        hospital_key=hpke,
        device_key_for=lambda d: dkey.public_key() if d == device_id else None,
        state=ReceiverState(tmp_path / "receiver.db"),
        on_case=on_case,
    )

    def run() -> None:
        with contextlib.suppress(Exception):  # the hub may go away first at teardown
            receiver.run_once(stop)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()  # it ends at the stream's next line after stop; no need to wait for it
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.case_id for c in received] == ["e2e-1"]
    assert received[0].bundle() == bundle
    receiver.client.answer("e2e-1", "accept")
    events = device.device_events(after=0, stop=None)
    # The receiver's ack (病院に到着, ``received``) comes first unless the answer beat it.
    first = next(events)
    if first.kind == "received":
        assert first.data["hospital_id"] == hid
        first = next(events)
    assert first.kind == "answer"
    assert first.data["hospital_id"] == hid
