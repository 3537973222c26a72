"""Each case as a FHIR R4 document Bundle for the hospital's EHR: a folder or a FHIR server.

The Bundle is the one the ambulance sealed, with the profiles its content
follows claimed in ``meta.profile``: the base FHIR vital-signs profiles for the
vitals (their LOINC codes and UCUM units are exactly those profiles'), JP Core
for Patient, Encounter, AllergyIntolerance, Condition, MedicationStatement,
MedicationRequest, Procedure and Practitioner (the summary's resources already
claim theirs; they are kept). The local parts (JCS, the EMS times, consent)
stay unclaimed extensions of our own code system.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from sync.fhir_case import BP_PANEL, VITAL_FIELDS, VITALS_PANEL

__all__ = ["FhirExporter", "claim_profiles"]

FHIR_SD = "http://hl7.org/fhir/StructureDefinition/"
JP = "http://jpfhir.jp/fhir/core/StructureDefinition/"
# The base vital-signs profile of each vital code (sync.fhir_case's one vocabulary).
_VITAL_PROFILES = {
    c.code: c.profile
    for c in (VITALS_PANEL, BP_PANEL, *(f.coding for f in VITAL_FIELDS))
    if c.profile
}
_JP_PROFILES = {
    "Patient": "JP_Patient",
    "Encounter": "JP_Encounter",
    "AllergyIntolerance": "JP_AllergyIntolerance",
    "Condition": "JP_Condition",
    "MedicationStatement": "JP_MedicationStatement",
    "MedicationRequest": "JP_MedicationRequest",
    "Procedure": "JP_Procedure",
    "Practitioner": "JP_Practitioner",
}


def _add_profile(resource: dict[str, Any], url: str) -> None:
    meta = resource.setdefault("meta", {})
    profiles = meta.setdefault("profile", [])
    if url not in profiles:
        profiles.append(url)


def claim_profiles(bundle: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``bundle`` with ``meta.profile`` claimed where the content follows one."""
    out = copy.deepcopy(bundle)
    for entry in out.get("entry", []):
        res = entry.get("resource")
        if not isinstance(res, dict):
            continue
        kind = res.get("resourceType")
        if kind in _JP_PROFILES and not res.get("meta", {}).get("profile"):
            _add_profile(res, JP + _JP_PROFILES[kind])
        elif kind == "Observation":
            cats = {c.get("code") for cat in res.get("category", []) for c in cat.get("coding", [])}
            codes = {c.get("code") for c in res.get("code", {}).get("coding", [])}
            if "vital-signs" in cats:
                for code, name in _VITAL_PROFILES.items():
                    if code in codes:
                        _add_profile(res, FHIR_SD + name)
    return out


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class FhirExporter:
    """Write (0600) and/or POST each case Bundle; raises on failure (the caller logs it)."""

    def __init__(
        self,
        folder: Path | None = None,
        endpoint: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.folder = folder
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self._http = httpx.Client(timeout=10, transport=transport) if endpoint else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def export(self, case_id: str, bundle: dict[str, Any]) -> list[str]:
        doc = claim_profiles(bundle)
        data = json.dumps(doc, ensure_ascii=False, indent=1).encode()
        where: list[str] = []
        if self.folder is not None:
            path = self.folder / f"{_SAFE.sub('_', case_id)}.json"
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            where.append(str(path))
        if self._http is not None and self.endpoint is not None:
            # A document Bundle is POSTed to [base]/Bundle (FHIR RESTful create), as a
            # conditional create on the Bundle's identifier (the case id): an export that
            # is retried after a lost answer finds the first one and creates nothing.
            headers = {"Content-Type": "application/fhir+json; charset=utf-8"}
            ident = doc.get("identifier") or {}
            if ident.get("system") and ident.get("value"):
                headers["If-None-Exist"] = urlencode(
                    {"identifier": f"{ident['system']}|{ident['value']}"}
                )
            r = self._http.post(f"{self.endpoint}/Bundle", content=data, headers=headers)
            r.raise_for_status()
            where.append(f"{self.endpoint}/Bundle")
        return where
