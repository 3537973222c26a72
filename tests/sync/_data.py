"""Test data shared by the sync tests: a realistic case with recognisable personal strings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync.fhir_case import (
    CaseRecord,
    CaseTimes,
    CrewMember,
    DeviceInfo,
    VerifiedPatient,
    VitalSigns,
)

# Strings the privacy test searches for in every byte the device leaves behind.
PATIENT_NAME = "救急 花子テスト"
PATIENT_ADDRESS = "東京都千代田区テスト町一丁目2番3号"
CERT_SUBJECT = "CN=KYUKYU-TEST-SUBJECT-7741"
SUMMARY_TEXT = "ペニシリン系薬剤アレルギー・テスト所見"
COMPLAINT = "胸痛テスト主訴"
SECRET_STRINGS = (PATIENT_NAME, PATIENT_ADDRESS, CERT_SUBJECT, SUMMARY_TEXT, COMPLAINT)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def summary_bundle() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1", "name": [{"text": "x"}]}},
            {
                "fullUrl": "urn:uuid:0b7e6f0e-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Organization", "name": "テスト病院"},
            },
            {
                "resource": {
                    "resourceType": "AllergyIntolerance",
                    "id": "a1",
                    "patient": {"reference": "Patient/p1"},
                    "code": {"text": SUMMARY_TEXT},
                    "note": [{"text": CERT_SUBJECT}],
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "id": "m1",
                    "status": "active",
                    "subject": {"reference": "Patient/p1"},
                    "medicationCodeableConcept": {"text": "アムロジピン"},
                    "informationSource": {
                        "reference": "urn:uuid:0b7e6f0e-0000-4000-8000-000000000001"
                    },
                }
            },
        ],
    }


def case_record(case_id: str = "case-0001", *, full: bool = True) -> CaseRecord:
    vitals = [
        VitalSigns(
            observed_at=T0 + timedelta(minutes=5),
            systolic_mmhg=150,
            diastolic_mmhg=92,
            heart_rate_per_min=108,
            respiratory_rate_per_min=24,
            spo2_percent=94,
            body_temperature_c=37.2,
            gcs_total=14,
            jcs="1",
        ),
        VitalSigns(observed_at=T0 + timedelta(minutes=15), heart_rate_per_min=100, jcs="0"),
    ]
    return CaseRecord(
        case_id=case_id,
        device=DeviceInfo("dev-1", "救急車 千代田1", "東京消防庁"),
        times=CaseTimes(
            patient_contact=T0,
            call_received=T0 - timedelta(minutes=9),
            arrived_scene=T0 - timedelta(minutes=1),
            departed_scene=T0 + timedelta(minutes=20),
        ),
        patient=VerifiedPatient(
            name=PATIENT_NAME, birth_date=date(1951, 3, 4), sex="2", address=PATIENT_ADDRESS
        )
        if full
        else VerifiedPatient(),
        chief_complaint=COMPLAINT,
        vitals=vitals if full else [],
        crew=[CrewMember("TFD-1001", "救急救命士", "隊員 一郎"), CrewMember("TFD-1002", "隊長")],
        summary=summary_bundle() if full else None,
        composed_at=T0 + timedelta(minutes=21),
    )
