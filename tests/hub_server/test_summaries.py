"""Summary look-up: the hub's own certificate checks, PIN proof, consent, audit, patient history."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from hub_server.models import AuditEntry
from tests.hub_server._support import Hub, card_signature, cert_b64

pytestmark = pytest.mark.anyio


def _request(cert: str, consent: str = "consented", **evidence: Any) -> dict[str, Any]:
    return {
        "certificate": cert,
        "consent": consent,
        "evidence": {"kind": "face_check", **evidence},
        "crew_member": "救急隊員 A",
    }


@pytest.fixture
def seeded(hub: Hub, ca_dir: Path, test_ca: Any, tmp_path: Path) -> Any:
    """The real synthetic source with one patient holding a virtual card of the test CA."""
    from edge.card_sim import CardImage, KeyPool
    from hub_server.medical import open_source
    from kyukyu.testing import seed_with_cards

    report = seed_with_cards(
        hub.state.settings.db_url,
        patients=30,
        cards=1,
        cards_dir=tmp_path / "cards",
        ca_dir=ca_dir,
        key_factory=KeyPool(1),
    )
    hub.state.medical_source = open_source(hub.state.settings.db_url)
    return CardImage.load(report.cards[0].path)


async def test_face_check_returns_a_valid_fhir_bundle_and_is_audited(hub: Hub, seeded: Any) -> None:
    from fhir.resources.R4B.bundle import Bundle

    device = await hub.enroll_device()
    r = await hub.call(device, "POST", "/v1/summaries", _request(cert_b64(seeded)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "found"
    assert body["assurance"] == "face_check"
    bundle = Bundle.model_validate(body["bundle"])
    assert bundle.type == "document"
    with hub.state.session() as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.action == "summary_lookup")).all()
    assert len(rows) == 1
    assert rows[0].patient_ref
    details = json.loads(rows[0].details)
    assert details["consent"] == "consented"
    assert details["outcome"] == "found"
    # The audit trail holds a pseudonym, never the certificate subject.
    assert seeded.auth_certificate.subject.rfc4514_string().split("=")[-1] not in rows[0].details


async def test_refused_consent_returns_nothing_but_is_audited(hub: Hub, card: Any) -> None:
    device = await hub.enroll_device()
    r = await hub.call(device, "POST", "/v1/summaries", _request(cert_b64(card), "refused"))
    assert r.status_code == 200
    assert r.json() == {"status": "refused", "assurance": "face_check", "bundle": None}
    with hub.state.session() as s:
        [row] = s.exec(select(AuditEntry).where(AuditEntry.action == "summary_lookup")).all()
    assert json.loads(row.details)["outcome"] == "refused"


async def test_unknown_patient_is_not_found(hub: Hub, card: Any) -> None:
    device = await hub.enroll_device()
    r = await hub.call(device, "POST", "/v1/summaries", _request(cert_b64(card), "unconscious"))
    assert r.status_code == 200
    assert r.json()["status"] == "not_found"


async def test_pin_proof_against_single_use_challenge(hub: Hub, card: Any) -> None:
    device = await hub.enroll_device()
    other = await hub.enroll_device(name="救急2")
    ch = (await hub.call(device, "POST", "/v1/challenges")).json()
    good = card_signature(card, ch["nonce"])
    req = _request(
        cert_b64(card), kind="pin_signature", challenge_id=ch["challenge_id"], signature=good
    )
    req["evidence"]["kind"] = "pin_signature"
    # Another device cannot use this device's challenge.
    r = await hub.call(other, "POST", "/v1/summaries", req)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_challenge"
    r = await hub.call(device, "POST", "/v1/summaries", req)
    assert r.status_code == 200, r.text
    assert r.json()["assurance"] == "card_signature"
    r = await hub.call(device, "POST", "/v1/summaries", req)  # used already
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_challenge"
    ch2 = (await hub.call(device, "POST", "/v1/challenges")).json()
    wrong = card_signature(card, ch["nonce"])  # a signature over another nonce
    req2 = {
        **req,
        "evidence": {
            "kind": "pin_signature",
            "challenge_id": ch2["challenge_id"],
            "signature": wrong,
        },
    }
    r = await hub.call(device, "POST", "/v1/summaries", req2)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "bad_card_signature"


@pytest.mark.parametrize(
    ("certificate", "code"),
    [
        ("@@not base64@@", "malformed_certificate"),
        (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), "malformed_certificate"),
    ],
)
async def test_malformed_certificates_get_clear_4xx(hub: Hub, certificate: str, code: str) -> None:
    device = await hub.enroll_device()
    r = await hub.call(device, "POST", "/v1/summaries", _request(certificate))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == code
    assert err["message_ja"]
    assert err["message_en"]


async def test_certificate_of_another_ca_is_refused(hub: Hub) -> None:
    from edge.card_sim import KeyPool, TestCA

    stranger = TestCA.create(key_factory=KeyPool(1)).issue_card()
    device = await hub.enroll_device()
    r = await hub.call(device, "POST", "/v1/summaries", _request(cert_b64(stranger)))
    assert r.status_code == 422
    assert r.json()["error"]["code"] in {"untrusted_issuer", "untrusted_certificate"}


async def test_patient_history_only_for_the_card_holder(hub: Hub, card: Any, test_ca: Any) -> None:
    device = await hub.enroll_device(name="救急隊1号車")
    for consent in ("consented", "unconscious"):
        r = await hub.call(device, "POST", "/v1/summaries", _request(cert_b64(card), consent))
        assert r.status_code == 200
    from edge.card_sim import KeyPool

    other_card = test_ca.issue_card(key_factory=KeyPool(1))  # a key of its own
    await hub.call(device, "POST", "/v1/summaries", _request(cert_b64(other_card)))

    async def history(cert_of: Any, signer: Any) -> Any:
        ch = (await hub.client.post("/v1/patients/challenges")).json()
        body = {
            "certificate": cert_b64(cert_of),
            "challenge_id": ch["challenge_id"],
            "signature": card_signature(signer, ch["nonce"]),
        }
        return await hub.call(None, "POST", "/v1/patients/history", body)

    r = await history(card, card)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [e["consent"] for e in entries] == ["consented", "unconscious"]
    assert all(
        e["device_name"] == "救急隊1号車" and e["crew_member"] == "救急隊員 A" for e in entries
    )
    assert all(e["fire_department"] == "東京消防庁" for e in entries)
    # Someone holding another card cannot read this patient's history with this certificate.
    r = await history(card, other_card)
    assert r.status_code == 401
    # A signed device request is no substitute for the card.
    r = await hub.call(
        device,
        "POST",
        "/v1/patients/history",
        {"certificate": cert_b64(card), "challenge_id": "x", "signature": "AAAA"},
    )
    assert r.status_code == 401
