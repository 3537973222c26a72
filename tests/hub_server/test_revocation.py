"""CRL ingestion, signed snapshots with deltas, and revoked certificates refused by the hub."""

from __future__ import annotations

import base64
import itertools
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.card_sim import KeyPool, TestCA
from kyukyu.cli import main as kyukyu
from sync.signed import canonical_json
from sync.signing import b64d
from tests.hub_server._support import Hub, cert_b64

pytestmark = pytest.mark.anyio


@pytest.fixture
def own_ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "ca", key_factory=KeyPool(2))


_CLOCK = itertools.count(1)


def fresh(ca: TestCA) -> bytes:
    """A CRL of ``ca`` newer than any before it (thisUpdate a second later each time)."""
    return ca.crl(now=datetime.now(UTC) + timedelta(seconds=next(_CLOCK)))


def crl_with_number(ca: TestCA, number: int | None, this_update: datetime) -> bytes:
    """A CRL signed by the test CA's auth root, with a CRLNumber (the CA's key is private)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.auth_root.subject)
        .last_update(this_update)
        .next_update(this_update + timedelta(days=1))
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    key = ca._keys["auth_root"]
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


async def _ingest(hub: Hub, crl: bytes) -> Any:
    return await hub.call(
        hub.operator, "POST", "/v1/revocation/crl", {"crl": base64.b64encode(crl).decode()}
    )


async def test_snapshot_full_then_delta_signed(hub: Hub, test_ca: TestCA) -> None:
    device = await hub.enroll_device()
    hub_key = (await hub.client.get("/v1/hub-key")).json()
    key = Ed25519PublicKey.from_public_bytes(b64d(hub_key["public_key"]))
    a, b, c = (secrets.randbits(63) | 1 << 62 for _ in range(3))  # the CA is shared: fresh serials
    test_ca.revoke(a)
    test_ca.revoke(b)
    r = await _ingest(hub, fresh(test_ca))
    assert r.status_code == 201, r.text
    v1 = r.json()["version"]
    snap = (await hub.call(device, "GET", "/v1/revocation/snapshot")).json()
    key.verify(b64d(snap["signature"]), canonical_json(snap["snapshot"]))
    assert snap["snapshot"]["full"]
    assert {f"{a:x}", f"{b:x}"} <= set(snap["snapshot"]["added"])
    test_ca.revoke(c)
    v2 = (await _ingest(hub, fresh(test_ca))).json()["version"]
    assert v2 == v1 + 1
    delta = (await hub.call(device, "GET", f"/v1/revocation/snapshot?since={v1}")).json()[
        "snapshot"
    ]
    assert delta["full"] is False
    assert delta["added"] == [f"{c:x}"]
    assert delta["removed"] == []
    assert delta["version"] == v2


async def test_crl_from_an_untrusted_issuer_or_garbage_is_refused(hub: Hub, own_ca: TestCA) -> None:
    r = await _ingest(hub, own_ca.crl())
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "untrusted_crl"
    r = await _ingest(hub, b"not a crl")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "malformed_crl"


async def test_revoked_patient_certificate_is_refused(
    hub: Hub, test_ca: TestCA, tmp_path: Path
) -> None:
    victim = test_ca.issue_card(key_factory=KeyPool(1))
    device = await hub.enroll_device()
    body = {
        "certificate": cert_b64(victim),
        "consent": "consented",
        "evidence": {"kind": "face_check"},
        "crew_member": "A",
    }
    assert (await hub.call(device, "POST", "/v1/summaries", body)).status_code == 200
    test_ca.revoke(victim.auth_certificate.serial_number)
    crl_file = tmp_path / "auth.crl"
    crl_file.write_bytes(fresh(test_ca))
    s = hub.state.settings
    rc = kyukyu(
        [
            "hub",
            "ingest-crl",
            "--db",
            s.db_url,
            "--trust-roots",
            str(s.trust_roots_dir),
            "--allow-test-roots",
            str(crl_file),
        ]
    )
    assert rc == 0
    hub.state.invalidate_revocation_cache()
    r = await hub.call(device, "POST", "/v1/summaries", body)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "certificate_revoked"


async def test_kkrv_snapshot_for_offline_checks_on_the_device(hub: Hub, test_ca: TestCA) -> None:
    from edge.jpki.revocation import RevocationSnapshot

    device = await hub.enroll_device()
    serial = secrets.randbits(63) | 1 << 62
    test_ca.revoke(serial)
    assert (await _ingest(hub, fresh(test_ca))).status_code == 201
    r = await hub.call(device, "GET", "/v1/revocation/snapshot.kkrv")
    assert r.status_code == 200
    key = Ed25519PublicKey.from_public_bytes(
        b64d((await hub.client.get("/v1/hub-key")).json()["public_key"])
    )
    snap = RevocationSnapshot.from_bytes(r.content, verify_signature=lambda p, s: key.verify(s, p))
    assert serial in snap
    assert serial + 1 not in snap
    tampered = bytearray(r.content)
    tampered[30] ^= 1
    with pytest.raises(Exception):
        RevocationSnapshot.from_bytes(
            bytes(tampered), verify_signature=lambda p, s: key.verify(s, p)
        )


async def test_older_or_equal_crl_is_refused_and_revokes_nothing_back(
    hub: Hub, test_ca: TestCA, tmp_path: Path
) -> None:
    device = await hub.enroll_device()
    serial = secrets.randbits(63) | 1 << 62
    old = fresh(test_ca)  # before the revocation
    test_ca.revoke(serial)
    new = fresh(test_ca)
    first = await _ingest(hub, new)
    assert first.status_code == 201, first.text
    for replay in (old, new):  # older, and the same one again
        r = await _ingest(hub, replay)
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "crl_not_newer"
    snap = (await hub.call(device, "GET", "/v1/revocation/snapshot")).json()["snapshot"]
    assert f"{serial:x}" in snap["added"]
    assert snap["version"] == first.json()["version"]
    # The CLI says the same in one line, exit 1.
    crl_file = tmp_path / "old.crl"
    crl_file.write_bytes(old)
    s = hub.state.settings
    args = ["hub", "ingest-crl", "--db", s.db_url, "--trust-roots", str(s.trust_roots_dir)]
    assert kyukyu([*args, "--allow-test-roots", str(crl_file)]) == 1


async def test_crl_past_next_update_is_refused(hub: Hub, test_ca: TestCA) -> None:
    stale = test_ca.crl(now=datetime.now(UTC) - timedelta(days=2))  # nextUpdate: a day ago
    r = await _ingest(hub, stale)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "crl_expired"


async def test_crl_number_must_grow(hub: Hub, test_ca: TestCA) -> None:
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    assert (await _ingest(hub, crl_with_number(test_ca, 5, t))).status_code == 201
    later_same_number = crl_with_number(test_ca, 5, t + timedelta(seconds=1))
    r = await _ingest(hub, later_same_number)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "crl_not_newer"
    assert "CRLNumber" in r.json()["error"]["message_en"]
    no_number = crl_with_number(test_ca, None, t + timedelta(seconds=2))
    assert (await _ingest(hub, no_number)).json()["error"]["code"] == "crl_not_newer"
    r = await _ingest(hub, crl_with_number(test_ca, 6, t + timedelta(seconds=3)))
    assert r.status_code == 201, r.text


def _crl_number_of(crl: bytes) -> int:
    ext = x509.load_der_x509_crl(crl).extensions.get_extension_for_class(x509.CRLNumber)
    return int(ext.value.crl_number)


async def test_two_crls_within_one_second_ingest_in_order(hub: Hub, test_ca: TestCA) -> None:
    """TestCA.crl() numbers its CRLs (persisted in the CA directory): two issued within
    the same second (the same thisUpdate) are still ordered; they ingest in order, and
    the older one is refused afterwards."""
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = test_ca.crl(now=now), test_ca.crl(now=now)
    assert _crl_number_of(first) < _crl_number_of(second)
    assert test_ca.directory is not None
    # Another process loading the same CA directory goes on from the last number.
    third = TestCA.load(test_ca.directory).crl(now=now)
    assert _crl_number_of(third) > _crl_number_of(second)
    for crl in (first, second):
        r = await _ingest(hub, crl)
        assert r.status_code == 201, r.text
    r = await _ingest(hub, first)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "crl_not_newer"
    assert "CRLNumber" in r.json()["error"]["message_en"]
    assert (await _ingest(hub, third)).status_code == 201
    # Numbered but older by thisUpdate: refused (the number does not turn back the clock).
    older = test_ca.crl(now=now - timedelta(seconds=1))
    r = await _ingest(hub, older)
    assert r.status_code == 422
    assert "thisUpdate" in r.json()["error"]["message_en"]
