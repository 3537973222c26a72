"""Prometheus metrics of a real ``kyukyu hub serve`` (one process on SQLite, two workers on
PostgreSQL), scraped on the loopback metrics port and parsed with prometheus_client's
text parser; nothing in them names a case, a device, a hospital or a patient."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kyukyu.testing import wait_until_serving
from tests.components import fresh_postgres_database
from tests.hub_server._support import Signer, encode, new_key, pub, x25519_pub

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(db_url: str, roots: Path, tmp: Path, workers: int) -> Iterator[tuple[str, str]]:
    port, metrics_port = _port(), _port()
    out = tmp / "operator.json"
    subprocess.run(
        [sys.executable, "-m", "kyukyu", "hub", "init", "--db", db_url, "--out", str(out)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    log = open(tmp / "hub.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "kyukyu", "hub", "serve", "--db", db_url, "--port", str(port),
         "--env", "test", "--trust-roots", str(roots), "--allow-test-roots",
         "--workers", str(workers), "--metrics-port", str(metrics_port), "--pool-size", "3"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "KYUKYU_HUB_SSE_KEEPALIVE_SECONDS": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, timeout=90, why=lambda: (tmp / "hub.log").read_text()[-3000:])
        yield url, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _values(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            key = f"{sample.name}{{{labels}}}" if labels else sample.name
            out[key] = out.get(key, 0.0) + sample.value
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_metrics_scraped_and_parsed_without_patient_data(
    backend: str, tmp_path: Path, roots_dir: Path, request: pytest.FixtureRequest
) -> None:
    import json

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            db_url, workers = f"sqlite:///{tmp_path / 'hub.db'}", 1
        else:
            request.getfixturevalue("postgres_url")  # fails clearly without PostgreSQL
            db_url, workers = stack.enter_context(fresh_postgres_database()), 2
        url, metrics_url = stack.enter_context(_serve(db_url, roots_dir, tmp_path, workers))
        creds = json.loads((tmp_path / "operator.json").read_text())
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from sync.signing import b64d

        operator = Signer(
            creds["key_id"], Ed25519PrivateKey.from_private_bytes(b64d(creds["private_key"]))
        )
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def call(
                signer: Signer | None, path: str, body: object, **headers: str
            ) -> httpx.Response:
                raw = encode(body)
                h = {"content-type": "application/json", **headers}
                if signer is not None:
                    h.update(signer.headers("POST", path, raw))
                return await client.post(path, content=raw, headers=h)

            hkey = new_key()
            r = await call(operator, "/v1/hospitals", {
                "name": "聖路加国際病院", "lat": 35.67, "lon": 139.77,
                "hpke_public_key": x25519_pub(), "signing_public_key": pub(hkey),
            })  # fmt: skip
            assert r.status_code == 201, r.text
            hid = r.json()["hospital_id"]
            hospital = Signer(f"hospital:{hid}", hkey)
            r = await call(operator, "/v1/enrollment-tokens", {"fire_department": "東京消防庁"})
            dkey = new_key()
            r = await call(None, "/v1/devices/enroll", {
                "token": r.json()["token"], "public_key": pub(dkey), "name": "救急1",
            })  # fmt: skip
            assert r.status_code == 201, r.text
            device = Signer(f"device:{r.json()['device_id']}", dkey)

            path = "/v1/hospitals/me/events"
            got: list[str] = []
            async with client.stream("GET", path, headers=hospital.headers("GET", path)) as s:
                assert s.status_code == 200
                case_ids = [f"case-{secrets.token_hex(6)}" for _ in range(3)]
                lines = s.aiter_lines()
                for i, case_id in enumerate(case_ids):
                    body = {
                        "case_id": case_id,
                        "recipients": [hid],
                        "envelope": base64.b64encode(secrets.token_bytes(4096)).decode(),
                    }
                    r = await call(
                        device, "/v1/cases", body,
                        **{"Idempotency-Key": case_id, "X-Kyukyu-Outbox-Depth": str(3 - i)},
                    )  # fmt: skip
                    assert r.status_code == 201, r.text
                    while case_id not in got:
                        line = await asyncio.wait_for(lines.__anext__(), 30)
                        if line.startswith("data: "):
                            got.append(json.loads(line[6:])["case_id"])
                scrape = httpx.get(metrics_url, timeout=10)
            assert scrape.status_code == 200
            text = scrape.text

    values = _values(text)
    assert values["kyukyu_hub_streams_open"] == 1
    assert values["kyukyu_hub_cases_total"] == 3
    assert values["kyukyu_hub_cases_refused_total"] == 0
    # The first case may reach the stream by its first read of the database (it opens,
    # answers 200, then reads what it missed): not a push. The next two are pushed.
    assert values["kyukyu_hub_push_seconds_count"] >= 2
    assert values["kyukyu_hub_device_outbox_depth_count"] == 3
    assert values["kyukyu_hub_device_outbox_depth_sum"] == 6
    assert "kyukyu_hub_audit_pending_rows" in values
    assert "kyukyu_hub_audit_lag_seconds" in values
    assert "kyukyu_hub_streams_closed_total{reason=behind}" in values
    assert values["kyukyu_hub_database_up"] == 1
    # A hospital's backlog is labelled with its id (operational, issue 23): it has acked
    # nothing here, so its three cases wait.
    assert values[f"kyukyu_hub_hospital_unacked_cases{{hospital={hid}}}"] == 3
    assert any(k.startswith("process_resident_memory_bytes") for k in values)
    # No other identifier and no patient-side text anywhere in the scrape.
    for secret in [device.key_id.split(":")[1], *case_ids, "聖路加", "東京消防庁", "救急1"]:
        assert secret not in text
    # The metrics port answers on loopback only.
    port = int(metrics_url.split(":")[2].split("/")[0])
    with socket.socket() as s:
        s.settimeout(2)
        other = _non_loopback_address()
        if other is not None:
            assert s.connect_ex((other, port)) != 0


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else str(addr)
