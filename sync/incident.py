"""Mass-casualty incidents on the device side (docs/mass-casualty.md): the device-signed
calls to the platform, and the minimal case record of a triage tag.

The platform holds in clear only the incident, tags, categories, assignments and
capacities; what a crew notes of a patient (age band, sex, main injury) goes only into
``tag_case_record``, which the caller seals for the assigned hospital and queues in the
ordinary outbox (``sync.outbox``), so it is sent exactly once, offline-safe, and answered
like any case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync._http import SignedHttp
from sync.fhir_case import CaseRecord, CaseTimes, CrewMember, DeviceInfo, PatientEstimate

__all__ = [
    "AGE_BANDS",
    "CATEGORY_JA",
    "INCIDENT",
    "IncidentApi",
    "TagPatient",
    "tag_case_record",
]

#: The stream's event name of a pushed board (not numbered, like ``availability``).
INCIDENT = "incident"
#: START categories the hospitals are asked for (黒 is not transported).
CATEGORY_JA = {"red": "赤", "yellow": "黄", "green": "緑"}
#: Estimated age bands, each with the age the sealed record carries as 推定年齢.
AGE_BANDS = {
    "乳幼児": 3,
    "小児": 10,
    "10代": 15,
    "20代": 25,
    "30代": 35,
    "40代": 45,
    "50代": 55,
    "60代": 65,
    "70代": 75,
    "80代以上": 85,
}


@dataclass(frozen=True)
class TagPatient:
    """What a crew notes at the scene, before any card: sealed only, never sent in clear."""

    tag: str
    category: str  # red | yellow | green
    age_band: str | None = None  # a key of AGE_BANDS
    sex: str | None = None  # male | female
    injury: str | None = None  # the main injury, free text


def tag_case_record(
    p: TagPatient,
    *,
    case_id: str,
    incident: dict[str, Any],
    device: DeviceInfo,
    crew: Sequence[CrewMember],
    now: datetime,
) -> CaseRecord:
    """The case of one triage tag (no card: ``no_card``): 主訴 外傷, and a note with the
    incident, the tag and its category, the age band and the main injury."""
    note = " ・ ".join(
        x
        for x in (
            f"多数傷病者 {incident.get('kind', '')} {incident.get('place', '')}".strip(),
            f"トリアージ {p.tag} {CATEGORY_JA.get(p.category, p.category)}",
            f"推定 {p.age_band}" if p.age_band else "",
            p.injury or "",
        )
        if x
    )
    age = AGE_BANDS.get(p.age_band or "")
    return CaseRecord(
        case_id=case_id,
        device=device,
        times=CaseTimes(patient_contact=now),
        chief_complaint="外傷 / Trauma",
        chief_complaint_note=note,
        crew=tuple(crew),
        summary_status="no_card",
        estimate=PatientEstimate(age, p.sex) if age is not None or p.sex else None,
    )


class IncidentApi:
    """The device-signed incident calls (``SignedHttp`` of the device's platform client)."""

    def __init__(self, http: SignedHttp) -> None:
        self.http = http

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        out = self.http.request_json(method, path, body=body)
        return out if isinstance(out, dict) else {}

    def declare(self, place: str, kind: str, estimated_count: int) -> dict[str, Any]:
        body = {"place": place, "kind": kind, "estimated_count": estimated_count}
        return self._json("POST", "/v1/incidents", body)

    def board(self, incident_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/incidents/{incident_id}")

    def register(self, incident_id: str, tag: str, category: str) -> dict[str, Any]:
        body = {"tag": tag, "category": category}
        return self._json("POST", f"/v1/incidents/{incident_id}/patients", body)

    def assign(self, incident_id: str, tag: str, hospital_id: str, case_id: str) -> dict[str, Any]:
        body = {"hospital_id": hospital_id, "case_id": case_id}
        return self._json("POST", f"/v1/incidents/{incident_id}/patients/{tag}/assignment", body)

    def close(self, incident_id: str) -> dict[str, Any]:
        return self._json("POST", f"/v1/incidents/{incident_id}/close")
