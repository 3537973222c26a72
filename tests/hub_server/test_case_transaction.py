"""POST /v1/cases in one transaction: replay, failures leave nothing, concurrent retries,
the pending audit rows (PostgreSQL) and what a rolled-back case leaves behind."""

from __future__ import annotations

import asyncio
import base64
import secrets

import pytest
from sqlalchemy import text

from hub_server.core.audit import verify_chain
from tests.hub_server._support import Hub, encode

pytestmark = pytest.mark.anyio


def _body(case_id: str, recipients: list[str]) -> dict[str, object]:
    return {
        "case_id": case_id,
        "recipients": recipients,
        "envelope": base64.b64encode(secrets.token_bytes(512)).decode(),
    }


def _count(hub: Hub, sql: str) -> int:
    with hub.state.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


async def test_replayed_case_post_is_401_and_stores_nothing_more(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    raw = encode(_body("rp-1", [hid]))
    headers = {
        **device.headers("POST", "/v1/cases", raw),
        "content-type": "application/json",
        "Idempotency-Key": "rp-key",
    }
    first = await hub.client.post("/v1/cases", content=raw, headers=headers)
    again = await hub.client.post("/v1/cases", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_request"
    assert _count(hub, "SELECT count(*) FROM events WHERE case_id = 'rp-1'") == 1


async def test_failed_post_leaves_nothing_but_its_nonce(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    raw = encode(_body("fail-1", [hid, "nosuchhospital"]))
    headers = {
        **device.headers("POST", "/v1/cases", raw),
        "content-type": "application/json",
        "Idempotency-Key": "fail-key",
    }
    r = await hub.client.post("/v1/cases", content=raw, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_recipient"
    for table in ("cases", "events", "case_recipients", "idempotency_records", "audit_pending"):
        assert _count(hub, f"SELECT count(*) FROM {table}") == 0, table
    assert _count(hub, "SELECT event_seq FROM hospitals") == 0
    # The same signed request cannot be replayed later (e.g. once the hospital exists).
    again = await hub.client.post("/v1/cases", content=raw, headers=headers)
    assert again.status_code == 401
    # The key is free: a new request with it succeeds.
    ok = await hub.call(
        device, "POST", "/v1/cases", _body("fail-1", [hid]), headers={"Idempotency-Key": "fail-key"}
    )
    assert ok.status_code == 201, ok.text


async def test_concurrent_retries_with_one_key_store_one_case(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    body = _body("conc-1", [hid])
    results = await asyncio.gather(
        *(
            hub.call(device, "POST", "/v1/cases", body, headers={"Idempotency-Key": "conc"})
            for _ in range(6)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) >= 1
    assert set(codes) <= {201, 409}
    created = {r.json()["created_at"] for r in results if r.status_code == 201}
    assert len(created) == 1  # replays return the first response
    assert _count(hub, "SELECT count(*) FROM cases") == 1
    assert _count(hub, "SELECT event_seq FROM hospitals") == 1


async def test_every_case_is_in_the_audit_chain(hub: Hub) -> None:
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    posts = await asyncio.gather(*(hub.post_case(device, [hid]) for _ in range(12)))
    assert all(p.status_code == 201 for p in posts)
    hub.state.chain_audit()
    assert _count(hub, "SELECT count(*) FROM audit_pending") == 0
    assert _count(hub, "SELECT count(*) FROM audit WHERE action = 'case_created'") == 12
    with hub.state.session() as s:
        assert verify_chain(s).ok


async def test_pending_rows_left_by_a_crash_are_chained_later(hub: Hub) -> None:
    """A process that died between its commit and the chaining left rows in audit_pending."""
    device = await hub.enroll_device()
    hid, _ = await hub.register_hospital()
    with hub.state.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_pending (at, actor, action, subject, details)"
                " VALUES (:at, 'device:x', 'case_created', 'case:orphan', '{}')"
            ),
            {
                "at": "2026-01-01T00:00:00+00:00"
                if hub.state.settings.is_postgres
                else "2026-01-01 00:00:00.000000"
            },
        )
    assert (await hub.post_case(device, [hid])).status_code == 201
    r = await hub.call(hub.operator, "GET", "/v1/audit", headers=None)
    subjects = [e["subject"] for e in r.json()["entries"]]
    assert "case:orphan" in subjects
    assert _count(hub, "SELECT count(*) FROM audit_pending") == 0
    with hub.state.session() as s:
        assert verify_chain(s).ok
