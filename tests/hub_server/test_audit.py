"""The hash-chained audit trail: every kind of event is written; any tampering is detected."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from hub_server.core.audit import verify_chain
from kyukyu.cli import main as kyukyu
from tests.hub_server._support import Hub, cert_b64

pytestmark = pytest.mark.anyio


async def _activity(hub: Hub, card: Any) -> None:
    device = await hub.enroll_device()
    hid, hs = await hub.register_hospital()
    await hub.post_case(device, [hid], case_id="aud-1")
    await hub.call(hs, "POST", "/v1/cases/aud-1/answers", {"answer": "accept"})
    body = {
        "certificate": cert_b64(card),
        "consent": "consented",
        "evidence": {"kind": "face_check"},
        "crew_member": "A",
    }
    await hub.call(device, "POST", "/v1/summaries", body)
    await hub.call(hub.operator, "POST", f"/v1/devices/{device.key_id.split(':')[1]}/revoke")


async def test_every_kind_of_event_is_audited_and_the_chain_verifies(hub: Hub, card: Any) -> None:
    await _activity(hub, card)
    r = await hub.call(hub.operator, "GET", "/v1/audit")
    actions = [e["action"] for e in r.json()["entries"]]
    for needed in (
        "enrollment_token_created",
        "device_enrolled",
        "hospital_registered",
        "case_created",
        "case_answered",
        "summary_lookup",
        "device_revoked",
    ):
        assert needed in actions
    with hub.state.session() as s:
        verdict = verify_chain(s)
    assert verdict.ok
    assert verdict.rows == len(actions)
    assert kyukyu(["hub", "audit", "verify", "--db", hub.state.settings.db_url]) == 0


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit SET details = replace(details, 'accept', 'decline')"
        " WHERE action = 'case_answered'",
        "UPDATE audit SET actor = 'operator:someone' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 3",
        "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)",
    ],
)
async def test_tampering_is_detected(
    hub: Hub, card: Any, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _activity(hub, card)
    with hub.state.engine.begin() as conn:
        conn.execute(text(tamper))
    with hub.state.session() as s:
        assert not verify_chain(s).ok
    assert kyukyu(["hub", "audit", "verify", "--db", hub.state.settings.db_url]) == 1
    assert "TAMPERED" in capsys.readouterr().err


async def test_rehashing_one_row_still_breaks_the_chain(hub: Hub, card: Any) -> None:
    """An attacker who recomputes the edited row's hash breaks the next row's prev_hash."""
    from hub_server.core.audit import entry_hash
    from hub_server.models import AuditEntry

    await _activity(hub, card)
    with hub.state.session() as s:
        row = s.get(AuditEntry, 2)
        assert row is not None
        row.actor = "operator:forged"
        row.hash = entry_hash(
            row.prev_hash,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            patient_ref=row.patient_ref,
            details=row.details,
        )
        s.add(row)
        s.commit()
        verdict = verify_chain(s)
    assert not verdict.ok
    assert verdict.bad_seq == 3
