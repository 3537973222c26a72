"""多数傷病者 at the hospital (docs/mass-casualty.md): the incidents this hospital was
alerted of, as the platform holds them (its own capacity and its own tags only), and its
answer of how many it can take now per START category, sent on the hospital-signed
``POST /v1/hospitals/me/incidents/{id}/capacity`` and, once the platform took it, recorded
in the hospital's audit trail (``incident_capacity``: who, the counts)."""

from __future__ import annotations

import json
from typing import Any

from hospital.store import HospitalStore
from sync.receiver import HospitalClient

__all__ = ["ACTION", "CATEGORIES", "answer_capacity", "incidents"]

ACTION = "incident_capacity"
#: START categories asked for, with their words on the dashboard.
CATEGORIES = (("red", "赤"), ("yellow", "黄"), ("green", "緑"))


def incidents(client: HospitalClient) -> list[dict[str, Any]]:
    """The incidents this hospital was alerted of, newest first."""
    out = client.http.request_json("GET", "/v1/hospitals/me/incidents")
    return [i for i in out if isinstance(i, dict)] if isinstance(out, list) else []


def answer_capacity(
    client: HospitalClient,
    store: HospitalStore,
    incident_id: str,
    counts: dict[str, int],
    *,
    by: str,
) -> dict[str, Any]:
    """Send the counts (every category, 0..1000), then record who answered."""
    body = {code: int(counts[code]) for code, _ in CATEGORIES}
    out = client.http.request_json(
        "POST", f"/v1/hospitals/me/incidents/{incident_id}/capacity", body=body
    )
    store.audit(by, ACTION, detail=json.dumps({"incident_id": incident_id, **body}))
    return out if isinstance(out, dict) else {}
