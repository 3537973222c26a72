"""A real platform (hub under uvicorn), hospitals set up with the real CLI, a real device.

Hospitals register with ``kyukyu hospital init`` and an operator's one-time token;
staff accounts come from ``kyukyu hospital user add``; the receiving service is
``HospitalRuntime`` under a real uvicorn (``kyukyu.testing``) on a loopback port.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hospital.main import HospitalRuntime
from hospital.settings import HospitalSettings
from kyukyu.cli import main as kyukyu_main
from kyukyu.testing import STAFF_PASSWORD as PASSWORD
from kyukyu.testing import serve_in_thread
from sync import SignedHttp
from sync.client import PlatformClient
from sync.fhir_case import (
    CaseRecord,
    CaseTimes,
    CrewMember,
    DeviceInfo,
    Eta,
    PatientEstimate,
    Treatment,
    VerifiedPatient,
    VitalSigns,
    build_case_bundle,
)
from sync.seal import seal_json
from tests.sync._realhub import make_real_hub

SCENE = (35.6812, 139.7671)


def cli(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = kyukyu_main(list(args))
    assert rc == 0, (args, out.getvalue())
    doc: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return doc


@dataclass
class Device:
    client: PlatformClient
    key: Ed25519PrivateKey
    id: str

    def send(self, recipients: list[str], **record: Any) -> str:
        """Seal a case for ``recipients`` (keys from the signed directory) and post it
        (``bundle``: this one as sealed, else one made of ``record``; ``created_at``: the
        sealing time the device's clock gives, default now)."""
        case_id = record.pop("case_id", None) or str(uuid.uuid4())
        created_at = record.pop("created_at", None)
        bundle = record.pop("bundle", None) or make_bundle(case_id, self.id, **record)
        directory = {h.id: h for h in self.client.hospital_directory(*SCENE)}
        sealed = seal_json(
            bundle,
            case_id=case_id,
            device_id=self.id,
            device_key=self.key,
            recipients={r: directory[r].hpke_public_key for r in recipients},
            created_at=created_at,
        )
        self.client.post_case(case_id, recipients, sealed, idempotency_key=str(uuid.uuid4()))
        return case_id


def make_bundle(case_id: str, device_id: str, **kw: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    vitals = kw.pop(
        "vitals",
        (
            VitalSigns(
                observed_at=now,
                systolic_mmhg=300,  # out of range: flagged, never refused
                diastolic_mmhg=58,
                heart_rate_per_min=118,
                respiratory_rate_per_min=24,
                spo2_percent=91,
                body_temperature_c=36.4,
                gcs_total=14,
                jcs="1",
            ),
        ),
    )
    record = CaseRecord(
        case_id=case_id,
        device=DeviceInfo(device_id, "テスト救急1", "テスト市消防本部", phone="090-0000-1111"),
        times=CaseTimes(patient_contact=now, call_received=now - timedelta(minutes=12)),
        patient=kw.pop("patient", VerifiedPatient(name="救急 太郎", sex="1")),
        chief_complaint=kw.pop("chief_complaint", "胸痛"),
        vitals=vitals,
        crew=(CrewMember("001", "救急救命士", "隊長 一郎", phone="090-0000-2222"),),
        summary=kw.pop("summary", SUMMARY),
        consent=kw.pop("consent", "consented"),
        assurance=kw.pop("assurance", "card_signature"),
    )
    assert not kw, kw
    return build_case_bundle(record)


SUMMARY: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "document",
    "entry": [
        {
            "fullUrl": "urn:uuid:a1",
            "resource": {
                "resourceType": "AllergyIntolerance",
                "code": {"text": "ペニシリン系"},
                "patient": {"reference": "Patient/p"},
                "reaction": [{"manifestation": [{"text": "発疹"}]}],
            },
        },
        {
            "fullUrl": "urn:uuid:c1",
            "resource": {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"text": "2型糖尿病"},
                "subject": {"reference": "Patient/p"},
            },
        },
        {
            "fullUrl": "urn:uuid:m1",
            "resource": {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": {"text": "メトホルミン塩酸塩錠250mg"},
                "subject": {"reference": "Patient/p"},
                "dosage": [{"text": "1日2回朝夕食後"}],
            },
        },
    ],
}


@dataclass
class HospitalSite:
    id: str
    name: str
    data_dir: Path
    runtime: HospitalRuntime | None = None
    url: str = ""
    users: dict[str, str] = field(default_factory=dict)  # username -> TOTP secret

    def settings(self, **kw: Any) -> HospitalSettings:
        return HospitalSettings(data_dir=self.data_dir, purge_interval_seconds=3600, **kw)


@dataclass
class Platform:
    url: str
    hub: Any
    operator: SignedHttp
    stack: ExitStack
    devices: list[Device] = field(default_factory=list)

    def new_device(self, fire_department: str = "テスト市消防本部") -> Device:
        token = self.operator.request_json(
            "POST", "/v1/enrollment-tokens", body={"fire_department": fire_department}
        )["token"]
        key = Ed25519PrivateKey.generate()
        client = PlatformClient(self.url, key=key, hub_public_key=self.hub.state.hub_key.public_key)
        self.stack.callback(client.close)
        device = Device(client, key, client.enroll(token, "テスト救急1"))
        self.devices.append(device)
        return device

    def new_hospital(self, tmp: Path, name: str, lat: float, lon: float) -> HospitalSite:
        token = self.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": name}
        )["token"]
        data_dir = tmp / f"hospital-{uuid.uuid4().hex[:6]}"
        doc = cli(
            "hospital", "init", "--data-dir", str(data_dir), "--platform", self.url,
            "--token", token, "--lat", str(lat), "--lon", str(lon),
        )  # fmt: skip
        return HospitalSite(doc["hospital_id"], doc["name"], data_dir)

    def add_user(self, site: HospitalSite, username: str) -> str:
        doc = cli(
            "hospital", "user", "add", username, "--data-dir", str(site.data_dir),
            "--password", PASSWORD, "--display-name", f"{username} 医師",
        )  # fmt: skip
        site.users[username] = doc["totp_secret"]
        return str(doc["totp_secret"])

    def start(self, site: HospitalSite, **settings: Any) -> HospitalSite:
        site.runtime = HospitalRuntime(site.settings(**settings))
        self.stack.callback(site.runtime.close)
        site.url = self.stack.enter_context(serve_in_thread(site.runtime.app))
        return site


@contextmanager
def platform(tmp_path: Path, **hub_settings: Any) -> Iterator[Platform]:
    with ExitStack() as stack:
        hub = make_real_hub(tmp_path / "hub", sse_keepalive_seconds=0.5, **hub_settings)
        url = stack.enter_context(serve_in_thread(hub.app))
        op = hub.operator(url)
        stack.callback(op.close)
        yield Platform(url, hub, op, stack)


def operator_key_doc(p: Platform) -> dict[str, str]:
    """The operator's key file, as ``kyukyu hub init`` writes it."""
    from cryptography.hazmat.primitives import serialization

    from sync.signing import b64e

    raw = p.hub.operator_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return {"key_id": f"operator:{p.hub.operator_id}", "private_key": b64e(raw)}


def wait_for(predicate: Any, timeout: float = 45.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is true; AssertionError naming ``what`` after ``timeout``
    seconds. The limit only bounds a failure (a passing test returns at its condition):
    generous, so a loaded machine (another suite's processes beside these) is no failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def totp_now(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def sign_in(
    url: str, username: str, password: str, code: str, client: httpx.Client | None = None
) -> tuple[httpx.Client, httpx.Response]:
    """Sign in over HTTP like the browser's form does; return the client (cookies) and answer."""
    c = client or httpx.Client(base_url=url, follow_redirects=False, timeout=10)
    page = c.get("/login")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m, page.text
    r = c.post(
        "/login",
        data={"username": username, "password": password, "totp": code, "csrf": m.group(1)},
    )
    return c, r


@contextlib.contextmanager
def signed_in(site: HospitalSite, username: str) -> Iterator[httpx.Client]:
    c, r = sign_in(site.url, username, PASSWORD, totp_now(site.users[username]))
    assert r.status_code == 303, r.text
    try:
        yield c
    finally:
        c.close()


def answer_seen(device: Any, case_id: str, timeout: float = 15) -> dict[str, Any]:
    """The device's own stream (as the ambulance sees it) until this case's answer."""
    stop = threading.Event()
    found: dict[str, Any] = {}

    def follow() -> None:
        for ev in device.client.device_events(0, stop):
            if ev.kind == "answer" and ev.data.get("case_id") == case_id:
                found.update(ev.data)
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    t.join(timeout)
    stop.set()
    assert found, "the device did not see the answer"
    return found


# -- the complete record: every field the crew can key, as the hospital must show it ------

FULL_SUMMARY: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "document",
    "entry": [
        {
            "fullUrl": "urn:uuid:p",
            "resource": {"resourceType": "Patient", "gender": "female", "birthDate": "1948-04-02"},
        },
        *(e for e in SUMMARY["entry"] if e["resource"]["resourceType"] != "MedicationStatement"),
    ],
}


def full_record(case_id: str, device_id: str, now: datetime, *, card: bool = True) -> CaseRecord:
    """A case with every field: two sets with every value (the first abnormal in most),
    six EMS times, treatments, heard history, crew and ETA. ``card``: a face-checked card
    whose summary gives age and sex (and no medications); else no card, age and sex
    estimated, only what was heard."""
    t0 = now.replace(second=0, microsecond=0) - timedelta(minutes=30)

    def at(minutes: int) -> datetime:
        return t0 + timedelta(minutes=minutes)

    sets = (
        VitalSigns(
            observed_at=at(12),
            systolic_mmhg=210,
            diastolic_mmhg=120,
            heart_rate_per_min=48,
            respiratory_rate_per_min=24,
            spo2_percent=88,
            o2_flow_l_min=0,
            body_temperature_c=37.2,
            jcs="30RI",
            gcs_eye=2,
            gcs_verbal=3,
            gcs_motor=5,
            pupil_left_mm=3.0,
            pupil_right_mm=5.0,
            pupil_left_reflex="brisk",
            pupil_right_reflex="sluggish",
            ecg_rhythm="af",
            glucose_mg_dl=142,
            stroke_cpss="2",
        ),
        VitalSigns(
            observed_at=at(22),
            systolic_mmhg=178,
            diastolic_mmhg=96,
            heart_rate_per_min=62,
            respiratory_rate_per_min=20,
            spo2_percent=95,
            o2_flow_l_min=4,
            body_temperature_c=36.9,
            jcs="10",
            gcs_eye=3,
            gcs_verbal=4,
            gcs_motor=6,
            pupil_left_mm=3.0,
            pupil_right_mm=3.5,
            pupil_left_reflex="brisk",
            pupil_right_reflex="brisk",
            ecg_rhythm="sinus",
            glucose_mg_dl=138,
            stroke_cpss="1",
        ),
    )
    return CaseRecord(
        case_id=case_id,
        device=DeviceInfo(device_id, "中央救急1", "テスト市消防本部", phone="090-1234-5678"),
        times=CaseTimes(
            call_received=at(0),
            arrived_scene=at(8),
            patient_contact=at(10),
            in_ambulance=at(18),
            departed_scene=at(25),
            arrived_hospital=at(45),
        ),
        chief_complaint="麻痺・しびれ / paralysis / numbness",
        chief_complaint_note="右上下肢の脱力（家族より 9時頃から）",
        vitals=sets,
        crew=(
            CrewMember("101", "隊長", "消防 太郎"),
            CrewMember("102", "救急救命士", "救命 次郎"),
        ),
        summary=FULL_SUMMARY if card else None,
        consent="consented" if card else None,
        assurance="face_check" if card else None,
        summary_status="found" if card else "no_card",
        estimate=None if card else PatientEstimate(age_years=70, sex="male"),
        heard={"allergies": ["そば（家族より）"], "conditions": ["高血圧（本人より）"]}
        if card
        else {"allergies": ["卵（本人より）"]},
        treatments=(
            Treatment("oxygen", at(14), "4L/分"),
            Treatment("iv", at(19)),
            Treatment("warming", at(20)),
        ),
        eta=(Eta(at(40), "crew"),),
    )
