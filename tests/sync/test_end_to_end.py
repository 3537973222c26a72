"""A whole case with real parts: virtual card of the test CA, the real hub with its synthetic
medical source, the emergency summary fetched through PlatformClient, the case Bundle sealed,
queued, delivered, streamed to two hospitals, opened, validated (R4B), answered; then the
device's data directory and the logs are searched for the patient's data (none may be there).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fhir.resources.R4B.bundle import Bundle

from sync.client import PlatformClient
from sync.fhir_case import CaseRecord, CaseTimes, DeviceInfo, VerifiedPatient, build_case_bundle
from sync.outbox import Outbox
from sync.receiver import HospitalClient, ReceivedCase, Receiver, ReceiverState
from sync.seal import seal_json
from sync.sender import Sender, follow_answers
from tests.sync._data import T0
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate
from tests.sync.test_fhir_case import references


def texts(obj: Any) -> set[str]:
    """Every Japanese string in a JSON document (the summary's human-readable content)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for v in obj.values():
            out |= texts(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= texts(v)
    elif isinstance(obj, str) and len(obj) >= 3 and any(ord(c) > 0x3000 for c in obj):
        out.add(obj)
    return out


@pytest.mark.slow
def test_full_case_flow_with_card_and_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edge.card_sim import CardImage, KeyPool, TestCA
    from hub_server.medical import open_source
    from kyukyu.testing import seed_with_cards

    caplog.set_level(logging.DEBUG)
    ca_dir = tmp_path / "ca"
    test_ca = TestCA.create(ca_dir, key_factory=KeyPool(3))
    roots = tmp_path / "roots"
    roots.mkdir()
    for name, cert in (("auth", test_ca.auth_root), ("phone", test_ca.phone_auth_root)):
        (roots / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    hub = make_real_hub(tmp_path / "hub", trust_roots_dir=roots, allow_test_roots=True)
    db_url = hub.state.settings.db_url
    report = seed_with_cards(
        db_url,
        patients=10,
        cards=1,
        cards_dir=tmp_path / "cards",
        ca_dir=ca_dir,
        key_factory=KeyPool(1),
    )
    hub.state.medical_source = open_source(db_url)
    card = CardImage.load(report.cards[0].path)
    holder = card.holder
    subject_cn = x509.load_der_x509_certificate(card.auth_certificate_der).subject.rfc4514_string()

    world = World()
    data_dir = tmp_path / "device-data"
    with serve(hub.app) as url:
        populate(hub, url, world, 2)
        device = PlatformClient(
            url,
            key=world.device_key,
            device_id=world.device_id,
            hub_public_key=hub.state.hub_key.public_key,
        )
        # 1. Summary look-up (face check), then the case Bundle with what was verified.
        answer = device.lookup_summary(
            {
                "certificate": base64.b64encode(card.auth_certificate_der).decode(),
                "consent": "consented",
                "evidence": {"kind": "face_check"},
                "crew_member": "救急隊員 A",
            }
        )
        assert answer["status"] == "found"
        summary = answer["bundle"]
        summary_texts = texts(summary)
        clinical_texts = texts(
            [
                e["resource"]
                for e in summary.get("entry", [])
                if e["resource"]["resourceType"] not in ("Patient", "Composition")
            ]
        )
        assert clinical_texts, "the synthetic summary has no clinical text to look for"
        hospitals = device.hospital_directory(35.68, 139.76)
        record = CaseRecord(
            case_id="e2e-0001",
            device=DeviceInfo(world.device_id, "救急車 E2E"),
            times=CaseTimes(patient_contact=T0),
            patient=VerifiedPatient(
                name=holder.name,
                birth_date=holder.birth_date,
                sex=holder.sex,
                address=holder.address,
            ),
            chief_complaint="呼吸苦",
            summary=summary,
        )
        bundle = build_case_bundle(record)
        Bundle.model_validate(bundle)
        assert set(references(bundle)) <= {e["fullUrl"] for e in bundle["entry"]}
        sealed = seal_json(
            bundle,
            case_id=record.case_id,
            device_id=world.device_id,
            device_key=world.device_key,
            recipients={h.id: h.hpke_public_key for h in hospitals},
        )
        del bundle, summary, record, answer
        # 2. Queue (sealed only) and deliver.
        outbox = Outbox(data_dir / "outbox.db")
        outbox.enqueue(sealed)
        with Sender(outbox, device) as sender:
            assert sender.drain(timeout=30).remaining == 0
        # 3. Both hospitals receive, open and validate it; one accepts.
        for h in world.hospitals:
            got: list[ReceivedCase] = []
            stop = threading.Event()
            rx = Receiver(
                HospitalClient(url, hospital_id=h.id, key=h.signing),
                hospital_key=h.hpke,
                device_key_for=world.device_lookup,
                state=ReceiverState(tmp_path / f"hospital-{h.id}" / "rx.db"),
                on_case=lambda c, got=got, stop=stop: (got.append(c), stop.set()),
            )
            rx.run_once(stop)
            (case,) = got
            opened = Bundle.model_validate(case.bundle())
            patient = next(
                e.resource for e in opened.entry if e.resource.get_resource_type() == "Patient"
            )
            assert patient.name[0].text == holder.name
            payload = case.opened.payload.decode()
            assert all(t in payload for t in clinical_texts)
            if h is world.hospitals[0]:
                rx.client.answer(case.case_id, "accept")
            rx.client.close()
        stop = threading.Event()
        t = threading.Thread(
            target=follow_answers, args=(device, outbox.answers), kwargs={"stop": stop}
        )
        t.start()
        for _ in range(500):
            st = outbox.status("e2e-0001")
            if st is not None and st.answers.get(world.hospitals[0].id) == "accept":
                break
            stop.wait(0.01)
        stop.set()
        t.join(10)
        # The one that answered: accept; the others acked it: received (病院に到着).
        answers = outbox.status("e2e-0001").answers  # type: ignore[union-attr]
        assert answers[world.hospitals[0].id] == "accept"
        assert {a for h, a in answers.items() if h != world.hospitals[0].id} <= {"received"}
        device.close()
        outbox.close()
    # 4. Nothing personal on the device or in the logs.
    needles = {holder.name, holder.address, subject_cn, *summary_texts}
    needles |= {holder.birth_date.isoformat()}
    needles |= {part for part in holder.name.split() if len(part) >= 2}
    blobs = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    assert blobs
    for name, blob in blobs.items():
        for needle in needles:
            for enc in (needle.encode(), needle.encode("utf-16-le"), json.dumps(needle).encode()):
                assert enc not in blob, f"{name} holds personal data"
    logs = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for needle in needles:
        assert needle not in logs, "a log line holds personal data"
