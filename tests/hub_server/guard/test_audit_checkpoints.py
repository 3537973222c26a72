"""Issue 10: the audit trail cannot be trimmed or rewritten unnoticed.

The attacks of the issue (delete the last row and move ``audit_head`` back; rewrite a
row and recompute every hash after it) pass the bare chain check; against a signed
checkpoint (every ``GET /v1/audit`` page carries one, the exporter writes them to a
file, ``kyukyu hub audit checkpoint`` makes one) ``kyukyu hub audit verify --checkpoint``
fails. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from hub_server.core.audit import (
    entry_hash,
    read_checkpoints,
    verify_against_checkpoints,
    verify_chain,
)
from hub_server.core.checkpoints import CheckpointExporter
from hub_server.core.security import HubKey
from hub_server.models import AuditEntry
from kyukyu.cli import main as kyukyu
from sync.signed import verify_document
from tests.hub_server._support import Hub

pytestmark = pytest.mark.anyio


async def _rows(hub: Hub, n: int) -> None:
    for i in range(n):
        r = await hub.call(
            hub.operator, "POST", "/v1/enrollment-tokens", {"fire_department": f"FD{i}"}
        )
        assert r.status_code == 201


async def _page_checkpoint(hub: Hub) -> dict:  # type: ignore[type-arg]
    r = await hub.call(hub.operator, "GET", "/v1/audit?limit=1")
    assert r.status_code == 200
    doc = r.json()["checkpoint"]
    assert doc is not None
    return doc  # type: ignore[no-any-return]


def _verify(hub: Hub, checkpoints: list[dict]) -> tuple[bool, str]:  # type: ignore[type-arg]
    with hub.state.session() as session:
        v = verify_against_checkpoints(session, checkpoints, hub.state.hub_key.public_key)
    return v.ok, v.reason


def _truncate(hub: Hub) -> None:
    with hub.state.engine.begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit")).scalar()
        prev = conn.execute(text("SELECT hash FROM audit WHERE seq = :s"), {"s": last - 1}).scalar()
        conn.execute(text("DELETE FROM audit WHERE seq = :s"), {"s": last})
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": last - 1, "h": prev})


def _rewrite_from(hub: Hub, seq: int) -> None:
    """Rewrite row ``seq`` and recompute every hash after it (and the head)."""
    with hub.state.session() as session:
        rows = session.exec(
            select(AuditEntry).where(col(AuditEntry.seq) >= seq).order_by(col(AuditEntry.seq))
        ).all()
        prev = rows[0].prev_hash
        rows[0].details = json.dumps({"rewritten": True})
        for row in rows:
            row.prev_hash = prev
            row.hash = entry_hash(
                prev,
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                patient_ref=row.patient_ref,
                details=row.details,
            )
            prev = row.hash
            session.add(row)
        session.commit()
    with hub.state.engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


async def test_every_audit_page_carries_a_signed_checkpoint_of_the_head(hub: Hub) -> None:
    await _rows(hub, 3)
    doc = await _page_checkpoint(hub)
    body = verify_document(doc, "checkpoint", hub.state.hub_key.public_key)
    with hub.state.session() as session:
        assert body["seq"] == verify_chain(session).rows
    assert doc["key_id"] == hub.state.hub_key.key_id
    assert _verify(hub, [doc]) == (True, "")


async def test_truncation_passes_the_chain_but_not_a_checkpoint(hub: Hub) -> None:
    await _rows(hub, 4)
    doc = await _page_checkpoint(hub)
    _truncate(hub)
    with hub.state.session() as session:
        assert verify_chain(session).ok  # the finding: the bare chain still verifies
    ok, reason = _verify(hub, [doc])
    assert not ok
    assert reason.startswith("truncated")


async def test_rewriting_passes_the_chain_but_not_a_checkpoint(hub: Hub) -> None:
    await _rows(hub, 4)
    doc = await _page_checkpoint(hub)
    _rewrite_from(hub, 2)
    with hub.state.session() as session:
        assert verify_chain(session).ok
    ok, reason = _verify(hub, [doc])
    assert not ok
    assert reason.startswith("rewritten")


async def test_a_checkpoint_not_signed_by_the_hub_is_refused(hub: Hub) -> None:
    await _rows(hub, 1)
    doc = await _page_checkpoint(hub)
    forged = HubKey.generate().sign_document("checkpoint", doc["checkpoint"])
    assert _verify(hub, [forged]) == (False, "bad checkpoint signature")


async def test_exporter_appends_checkpoints_and_the_cli_checks_them(
    hub: Hub, tmp_path: Path
) -> None:
    out = tmp_path / "checkpoints.jsonl"
    hub.state.settings = hub.state.settings.with_(audit_checkpoint_file=out)
    exporter = CheckpointExporter(hub.state)
    assert exporter.enabled
    await _rows(hub, 2)
    assert exporter.export_once() is not None
    assert exporter.export_once() is None  # the head has not moved: nothing new
    await _rows(hub, 2)
    assert exporter.export_once() is not None
    docs = read_checkpoints(out.read_text())
    assert [d["checkpoint"]["seq"] for d in docs] == [2, 4]
    key_file = tmp_path / "hub.pub"
    key_file.write_text(hub.state.hub_key.public_b64)
    db = hub.state.settings.db_url
    args = ["hub", "audit", "verify", "--db", db, "--checkpoint", str(out)]
    assert kyukyu([*args, "--hub-key", str(key_file)]) == 0
    _truncate(hub)
    assert kyukyu(["hub", "audit", "verify", "--db", db]) == 0  # the bare chain: fooled
    assert kyukyu([*args, "--hub-key", str(key_file)]) == 1


async def test_cli_checkpoint_then_rewrite_is_detected(hub: Hub, tmp_path: Path) -> None:
    key = tmp_path / "hub.key"
    hub_key = HubKey.load_or_create(key)
    await _rows(hub, 3)
    out = tmp_path / "cp.jsonl"
    db = hub.state.settings.db_url
    assert (
        kyukyu(["hub", "audit", "checkpoint", "--db", db, "--hub-key", str(key), "--out", str(out)])
        == 0
    )
    assert read_checkpoints(out.read_text())[0]["key_id"] == hub_key.key_id
    verify = ["hub", "audit", "verify", "--db", db, "--checkpoint", str(out), "--hub-key", str(key)]
    assert kyukyu(verify) == 0
    _rewrite_from(hub, 2)
    assert kyukyu(verify) == 1
