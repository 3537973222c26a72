"""``POST /v1/hospitals/me/direct-receipts``: a hospital hands in a case a device delivered
to it directly while the platform was out (docs/disaster.md, "Reconciliation"). The case
is stored once whoever comes first (a recipient, another recipient, the device's own post
with its own Idempotency-Key), audited with its route in the one chain; a hospital that is
not a recipient, an envelope that is not the device's, an unknown or revoked device are
refused. SQLite and PostgreSQL (the ``hub`` fixture)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlmodel import func, select

from hub_server.core.audit.verify import verify_chain
from hub_server.models import AuditEntry, Case, CaseRecipient
from sync.seal import seal_case
from tests.hub_server._support import Hub, Signer

pytestmark = pytest.mark.anyio

PATH = "/v1/hospitals/me/direct-receipts"


def _sealed(case_id: str, device: Signer, recipients: list[str]) -> str:
    pubs = {rid: X25519PrivateKey.generate().public_key() for rid in recipients}
    raw = seal_case(
        b'{"resourceType":"Bundle"}',
        case_id=case_id,
        device_id=device.key_id.removeprefix("device:"),
        device_key=device.key,
        recipients=pubs,
    )
    return base64.b64encode(raw).decode()


async def _relay(hub: Hub, hospital: Signer, case_id: str, device: Signer, env: str) -> Any:
    body = {"case_id": case_id, "device_id": device.key_id.removeprefix("device:"), "envelope": env}
    return await hub.call(hospital, "POST", PATH, body)


async def _device_post(hub: Hub, device: Signer, case_id: str, env: str, rs: list[str]) -> Any:
    body = {"case_id": case_id, "recipients": rs, "envelope": env}
    return await hub.call(
        device,
        "POST",
        "/v1/cases",
        body,
        headers={"Idempotency-Key": f"own-{case_id}", "X-Kyukyu-Route": "direct"},
    )


def _stored(hub: Hub, case_id: str) -> tuple[int, int, list[dict[str, Any]], bool]:
    """(cases, recipient rows, case_created details, the chain verifies)."""
    hub.state.chain_audit()
    with hub.state.session() as s:
        cases = s.exec(select(func.count()).select_from(Case).where(Case.id == case_id)).one()
        recipients = s.exec(
            select(func.count()).select_from(CaseRecipient).where(CaseRecipient.case_id == case_id)
        ).one()
        audited = s.exec(
            select(AuditEntry.details)
            .where(AuditEntry.subject == f"case:{case_id}")
            .where(AuditEntry.action == "case_created")
        ).all()
        ok = verify_chain(s).ok
    return int(cases), int(recipients), [json.loads(d) for d in audited], ok


async def test_a_relay_then_the_devices_own_post_make_one_case(hub: Hub) -> None:
    device = await hub.enroll_device()
    h1, s1 = await hub.register_hospital("病院1")
    h2, s2 = await hub.register_hospital("病院2")
    env = _sealed("dr-1", device, [h1, h2])

    first = await _relay(hub, s1, "dr-1", device, env)
    assert first.status_code == 201, first.text
    assert first.json()["recipients"] == sorted([h1, h2])
    again = await _relay(hub, s1, "dr-1", device, env)  # the same hospital retries
    assert again.status_code == 201, again.text
    other = await _relay(hub, s2, "dr-1", device, env)  # the other recipient reports it too
    assert other.status_code == 200, other.text
    # The device comes back and posts it with its own Idempotency-Key: a success.
    own = await _device_post(hub, device, "dr-1", env, [h1, h2])
    assert own.status_code == 200, own.text
    assert own.json()["case_id"] == "dr-1"
    assert own.headers.get("idempotent-replayed") == "true"

    cases, recipients, audited, ok = _stored(hub, "dr-1")
    assert (cases, recipients, ok) == (1, 2, True)
    assert audited == [
        {"recipients": sorted([h1, h2]), "size": audited[0]["size"], "route": "direct",
         "reported_by": h1}
    ]  # fmt: skip


async def test_the_devices_post_then_a_relay_make_one_case(hub: Hub) -> None:
    device = await hub.enroll_device()
    h1, s1 = await hub.register_hospital("病院1")
    env = _sealed("dr-2", device, [h1])
    assert (await _device_post(hub, device, "dr-2", env, [h1])).status_code == 201
    relayed = await _relay(hub, s1, "dr-2", device, env)
    assert relayed.status_code == 200, relayed.text
    cases, recipients, audited, ok = _stored(hub, "dr-2")
    assert (cases, recipients, ok) == (1, 1, True)
    assert [a.get("reported_by") for a in audited] == [None]


async def test_refused_relays(hub: Hub) -> None:
    device = await hub.enroll_device()
    other_device = await hub.enroll_device(name="救急2")
    h1, s1 = await hub.register_hospital("病院1")
    _, s3 = await hub.register_hospital("病院3")
    env = _sealed("dr-3", device, [h1])

    def code(r: Any) -> tuple[int, str]:
        return r.status_code, r.json()["error"]["code"]

    # Not a recipient of the case.
    assert code(await _relay(hub, s3, "dr-3", device, env)) == (403, "not_a_recipient")
    # Tampered: one byte of the ciphertext changed (the device's signature fails).
    raw = bytearray(base64.b64decode(env))
    raw[-5] ^= 1
    tampered = base64.b64encode(bytes(raw)).decode()
    assert (await _relay(hub, s1, "dr-3", device, tampered)).status_code == 422
    # Not base64, not a sealed case, another case id, another device named.
    assert (await _relay(hub, s1, "dr-3", device, "@@@")).status_code == 422
    assert (await _relay(hub, s1, "dr-x", device, env)).status_code == 422
    assert code(await _relay(hub, s1, "dr-3", other_device, env)) == (422, "envelope_mismatch")
    # A device may not hand in cases this way.
    body = {"case_id": "dr-3", "device_id": "x", "envelope": env}
    assert code(await hub.call(device, "POST", PATH, body)) == (403, "forbidden")
    # A revoked device's case is refused.
    device_id = device.key_id.removeprefix("device:")
    r = await hub.call(hub.operator, "POST", f"/v1/devices/{device_id}/revoke", {})
    assert r.status_code == 200, r.text
    assert code(await _relay(hub, s1, "dr-3", device, env)) == (403, "unknown_device")
    assert _stored(hub, "dr-3")[:2] == (0, 0)
