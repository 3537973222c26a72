"""A surge of cases: each is accepted (201) or refused at once with 503 + Retry-After, and
every accepted case reaches all its recipients. Real uvicorn on loopback, bounded burst."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub_server.core.config import Settings
from hub_server.core.security import HubKey
from hub_server.main import build_state, create_app
from kyukyu.testing import serve_in_thread
from tests.hub_server._support import Hub, Signer, encode, make_operator

pytestmark = pytest.mark.anyio

LIMIT = 4
BURST = 200


@pytest.fixture
def real_hub(tmp_path: Path, roots_dir: Path) -> Iterator[tuple[str, Any]]:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'hub.db'}",
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
        # One loopback address and few keys stand for many devices: no per-caller limits.
        unsigned_rate=1e6,
        unsigned_burst=10**6,
        identity_rate=1e6,
        identity_burst=10**6,
        max_connections_per_client=10**6,
        max_pending_cases=LIMIT,
        request_threads=4,
    )
    state = build_state(settings, hub_key=HubKey.generate())
    app = create_app(settings, state=state)
    with serve_in_thread(app) as url:
        yield url, state
    state.engine.dispose()


async def test_a_surge_is_accepted_or_refused_with_retry_after_and_nothing_is_lost(
    real_hub: tuple[str, Any],
) -> None:
    url, state = real_hub
    limits = httpx.Limits(max_connections=BURST + 10, max_keepalive_connections=BURST + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        hub = Hub(client=client, state=state, operator=make_operator(state))
        devices = [await hub.enroll_device(name=f"救急{i}") for i in range(4)]
        hospitals = [await hub.register_hospital(f"h{i}") for i in range(3)]
        path = "/v1/hospitals/me/events"
        received: dict[str, set[str]] = {hid: set() for hid, _ in hospitals}

        async def listen(hid: str, signer: Signer) -> None:
            async with client.stream("GET", path, headers=signer.headers("GET", path)) as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        received[hid].add(json.loads(line[6:])["case_id"])

        listeners = [asyncio.create_task(listen(h, s)) for h, s in hospitals]
        while state.bus.stream_count < len(hospitals):
            await asyncio.sleep(0.01)

        plans = []
        for i in range(BURST):
            recipients = [hospitals[i % 3][0], hospitals[(i + 1) % 3][0]]
            body = {
                "case_id": f"surge-{i:03d}",
                "recipients": recipients,
                "envelope": base64.b64encode(secrets.token_bytes(4096)).decode(),
            }
            plans.append((devices[i % 4], body, secrets.token_hex(8)))

        async def send(device: Signer, body: dict[str, Any], key: str) -> httpx.Response:
            raw = encode(body)
            headers = {
                **device.headers("POST", "/v1/cases", raw),
                "content-type": "application/json",
                "Idempotency-Key": key,
                "X-Kyukyu-Outbox-Depth": "3",
            }
            return await client.post("/v1/cases", content=raw, headers=headers)

        # The burst arrives while the database is busy (its writer lock held here): only
        # LIMIT cases are admitted, every other one is answered at once.
        await asyncio.to_thread(state._write_lock.acquire)
        try:
            tasks = [asyncio.create_task(send(*p)) for p in plans]
            while sum(t.done() for t in tasks) < BURST - LIMIT:
                await asyncio.sleep(0.01)
                assert not any(t.done() and t.exception() for t in tasks)
        finally:
            state._write_lock.release()
        first = await asyncio.gather(*tasks)
        statuses = [r.status_code for r in first]
        assert set(statuses) <= {201, 503}, statuses
        refused = [p for p, r in zip(plans, first, strict=True) if r.status_code == 503]
        for r in first:
            if r.status_code == 503:
                assert int(r.headers["Retry-After"]) >= 1
                assert r.json()["error"]["code"] == "overloaded"
        # The admitted ones were still waiting for the database when the others came.
        assert len(refused) >= BURST - LIMIT
        accepted = {p[1]["case_id"] for p in plans} - {p[1]["case_id"] for p in refused}

        sem = asyncio.Semaphore(LIMIT)

        async def again(p: tuple[Signer, dict[str, Any], str]) -> httpx.Response:
            async with sem:
                return await send(*p)

        # The devices send the refused cases again (same Idempotency-Key) after the pause.
        while refused:
            await asyncio.sleep(max(int(r.headers.get("Retry-After", "1")) for r in first))
            first = await asyncio.gather(*(again(p) for p in refused))
            assert {r.status_code for r in first} <= {201, 503}
            for p, r in zip(refused, first, strict=True):
                if r.status_code == 201:
                    accepted.add(p[1]["case_id"])
            refused = [p for p, r in zip(refused, first, strict=True) if r.status_code == 503]
        assert len(accepted) == BURST

        # Every accepted case reached each of its recipients.
        expected = {hid: set() for hid, _ in hospitals}  # type: dict[str, set[str]]
        for _, body, _ in plans:
            for hid in body["recipients"]:
                expected[hid].add(body["case_id"])
        for _ in range(3000):
            if received == expected:
                break
            await asyncio.sleep(0.02)
        assert received == expected
        for t in listeners:
            t.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

    from prometheus_client import generate_latest

    text = generate_latest(state.metrics.registry).decode()
    assert f"kyukyu_hub_cases_total {float(BURST)}" in text
    assert "kyukyu_hub_cases_refused_total" in text
