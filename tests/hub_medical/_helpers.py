"""Shared checks of the medical-source suite."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from hub_server.medical import SECTIONS

SECTION_KEYS = [key for key, _, _ in SECTIONS]


def validate(bundle: dict[str, Any]) -> None:
    """Validates with fhir.resources R4B and checks the document structure."""
    Bundle.model_validate(bundle)
    assert bundle["type"] == "document"
    assert bundle["identifier"]["value"].startswith("urn:uuid:")
    entries = bundle["entry"]
    urls = [e["fullUrl"] for e in entries]
    assert len(set(urls)) == len(urls)
    assert all(u.startswith("urn:uuid:") for u in urls)
    assert all(e["resource"]["id"] == e["fullUrl"][9:] for e in entries)
    assert all(uuid.UUID(u[9:]).version == 4 for u in urls)
    comp = entries[0]["resource"]
    assert comp["resourceType"] == "Composition"
    assert entries[1]["resource"]["resourceType"] == "Patient"
    assert comp["subject"]["reference"] == urls[1]
    codes = [s["code"]["coding"][0]["code"] for s in comp["section"]]
    assert codes == SECTION_KEYS  # allergies and conditions first, then the summary order
    # Every reference points inside the bundle; section order = entry order.
    for ref in _references(bundle):
        assert ref in urls, ref
    listed = [r["reference"] for s in comp["section"] for r in s.get("entry", [])]
    assert listed == urls[2 : 2 + len(listed)]
    for s in comp["section"]:
        assert ("entry" in s) != ("emptyReason" in s)


def _references(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        ref = obj.get("reference")
        if isinstance(ref, str):
            out.append(ref)
        for v in obj.values():
            out.extend(_references(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_references(v))
    return out


def section(bundle: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The resources of one Composition section, in order."""
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    comp = bundle["entry"][0]["resource"]
    sec = next(s for s in comp["section"] if s["code"]["coding"][0]["code"] == key)
    return [by_url[r["reference"]] for r in sec.get("entry", [])]


def iso(d: date) -> str:
    return d.isoformat()
