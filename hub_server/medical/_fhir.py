"""FHIR R4B resources (JP Core flavour) for one summary, as plain dicts.

Plain dicts, not ``fhir.resources`` models: building a summary stays far below
a millisecond; the tests validate every shape with the R4B models.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

from hub_server.medical._catalog import (
    ACUTE,
    ALLERGIES,
    CHRONIC,
    DIALYSIS,
    DRUGS,
    ESRD,
    ORGS,
    SURGERIES,
    TREATMENTS,
    Condition,
    Procedure,
)
from hub_server.medical._record import HC_FIELDS, Item

__all__ = ["ResourceFactory"]

Resource = dict[str, Any]

JP = "http://jpfhir.jp/fhir/core/StructureDefinition/"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"

_GENDER = {"1": "male", "2": "female"}
_CLASS = {"AMB": "外来", "IMP": "入院", "EMER": "救急外来"}
_ORG_KIND = {
    "hospital": "病院",
    "clinic": "診療所",
    "pharmacy": "薬局",
    "dialysis": "透析施設",
    "checkup": "健診機関",
}
_BP = (4, 5)  # HC_FIELDS indices of systolic / diastolic, sent as one 85354-9 panel


_CONDITIONS: dict[str, Condition] = {**CHRONIC, **ACUTE, "esrd": ESRD}


def _condition(key: str) -> Condition:
    return _CONDITIONS[key]


def _cc(text: str, system: str | None = None, code: str | None = None) -> dict[str, Any]:
    if system is None or code is None:
        return {"text": text}
    return {"coding": [{"system": system, "code": code}], "text": text}


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": TERMINOLOGY + system, "code": code}]}


def _days_after(iso: str, days: int) -> str:
    return (date.fromisoformat(iso) + timedelta(days=days)).isoformat()


class ResourceFactory:
    """Makes the resources of one bundle; keeps the urn:uuid of each."""

    def __init__(self, today: date) -> None:
        self.today = today.isoformat()
        # Version-4 UUIDs sharing 74 random bits per bundle plus a counter:
        # unique across bundles, and a large full view stays cheap to build.
        h = os.urandom(10).hex()
        variant = "89ab"[int(h[16], 16) % 4]
        self._stem = f"urn:uuid:{h[0:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-"
        self._counter = int.from_bytes(os.urandom(4), "big")
        self.orgs: dict[str, str] = {}
        self.patient_ref = self.new_urn()

    def new_urn(self) -> str:
        """A fresh ``urn:uuid:`` for one resource (or the bundle identifier)."""
        self._counter += 1
        return f"{self._stem}{self._counter:012x}"

    def org(self, key: str) -> dict[str, str]:
        """A reference to the Organization ``key`` (added to the bundle once)."""
        urn = self.orgs.get(key)
        if urn is None:
            urn = self.orgs[key] = self.new_urn()
        return {"reference": urn, "display": ORGS[key].name}

    def org_resources(self) -> list[tuple[str, Resource]]:
        out = []
        for key, urn in self.orgs.items():
            org = ORGS[key]
            res = {
                "resourceType": "Organization",
                "meta": {"profile": [JP + "JP_Organization"]},
                "active": True,
                "type": [_cc(_ORG_KIND[org.kind], TERMINOLOGY + "organization-type", "prov")],
                "name": org.name,
            }
            out.append((urn, res))
        return out

    def _subject(self) -> dict[str, str]:
        return {"reference": self.patient_ref}

    def patient(self, p: dict[str, Any]) -> Resource:
        """JP_Patient with kanji (IDE) and kana (SYL) names; never any My Number."""

        def name(family: str, given: str, rep: str) -> dict[str, Any]:
            return {
                "extension": [{"url": EN_REPRESENTATION, "valueCode": rep}],
                "use": "official",
                "text": f"{family} {given}",
                "family": family,
                "given": [given],
            }

        addr = f"{p['prefecture']}{p['city']}{p['line']}"
        return {
            "resourceType": "Patient",
            "meta": {"profile": [JP + "JP_Patient"]},
            "name": [
                name(p["family"], p["given"], "IDE"),
                name(p["family_kana"], p["given_kana"], "SYL"),
            ],
            "gender": _GENDER.get(p["sex"], "unknown"),
            "birthDate": p["birth_date"],
            "address": [
                {
                    "use": "home",
                    "text": addr,
                    "line": [p["line"]],
                    "city": p["city"],
                    "state": p["prefecture"],
                    "postalCode": p["postal_code"],
                    "country": "JP",
                }
            ],
        }

    def allergy(self, item: Item) -> tuple[Resource, str]:
        a = ALLERGIES[item["k"]]
        res = {
            "resourceType": "AllergyIntolerance",
            "meta": {"profile": [JP + "JP_AllergyIntolerance"]},
            "clinicalStatus": _status("allergyintolerance-clinical", "active"),
            "verificationStatus": _status("allergyintolerance-verification", "confirmed"),
            "type": a.kind,
            "category": [a.category],
            "criticality": a.criticality,
            "code": {"text": a.text},
            "patient": self._subject(),
            "recordedDate": item["d"],
            "reaction": [{"manifestation": [{"text": a.reaction}]}],
        }
        return res, f"{a.text}（{a.reaction}）"

    def condition(self, item: Item) -> tuple[Resource, str]:
        c = _condition(item["k"])
        res = {
            "resourceType": "Condition",
            "meta": {"profile": [JP + "JP_Condition"]},
            "clinicalStatus": _status("condition-clinical", item["s"]),
            "verificationStatus": _status("condition-ver-status", "confirmed"),
            "category": [
                _cc("問題リスト", TERMINOLOGY + "condition-category", "problem-list-item")
            ],
            "code": _cc(c.name, ICD10, c.icd10),
            "subject": self._subject(),
            "onsetDateTime": item["d"],
        }
        state = "" if item["s"] == "active" else " 治癒"
        return res, f"{c.name}（{c.icd10}） {item['d']}〜{state}"

    def encounter(self, item: Item) -> tuple[Resource, str]:
        cls = item["c"]
        period = {"start": item["d"]}
        end = item.get("end")
        ongoing = end is not None and end > self.today
        if end is not None and not ongoing:
            period["end"] = end
        res: Resource = {
            "resourceType": "Encounter",
            "meta": {"profile": [JP + "JP_Encounter"]},
            "status": "in-progress" if ongoing else "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": cls,
                "display": _CLASS[cls],
            },
            "subject": self._subject(),
            "period": period,
            "serviceProvider": self.org(item["o"]),
        }
        line = f"{item['d']}{'〜' + end if end else ''} {_CLASS[cls]} {ORGS[item['o']].name}"
        if item.get("r"):
            c = _condition(item["r"])
            res["reasonCode"] = [_cc(c.name, ICD10, c.icd10)]
            line += f"（{c.name}）"
        return res, line

    def _medication(self, drug: str) -> dict[str, Any]:
        d = DRUGS[drug]
        return _cc(d.name, ATC, d.atc)

    def prescriptions(self, item: Item) -> list[tuple[Resource, str]]:
        """MedicationRequest per drug of one 電子処方箋."""
        out = []
        for drug, days in item["rx"]:
            last = _days_after(item["d"], days - 1)
            res = {
                "resourceType": "MedicationRequest",
                "meta": {"profile": [JP + "JP_MedicationRequest"]},
                "status": "active" if last >= self.today else "completed",
                "intent": "order",
                "category": [
                    _cc("外来処方", TERMINOLOGY + "medicationrequest-category", "outpatient")
                ],
                "medicationCodeableConcept": self._medication(drug),
                "subject": self._subject(),
                "authoredOn": item["d"],
                "requester": self.org(item["o"]),
                "dosageInstruction": [{"text": DRUGS[drug].sig}],
                "dispenseRequest": {
                    "expectedSupplyDuration": {
                        "value": days,
                        "unit": "日",
                        "system": UCUM,
                        "code": "d",
                    }
                },
                "note": [{"text": "電子処方箋"}],
            }
            text = f"{item['d']} {DRUGS[drug].name} {DRUGS[drug].sig} {days}日分"
            out.append((res, f"{text}（{ORGS[item['o']].name}）"))
        return out

    def medications(self, item: Item) -> list[tuple[Resource, str]]:
        """MedicationStatement per drug of one dispensing (薬剤情報)."""
        out = []
        for drug, days in item["rx"]:
            last = _days_after(item["d"], days - 1)
            res = {
                "resourceType": "MedicationStatement",
                "status": "active" if last >= self.today else "completed",
                "medicationCodeableConcept": self._medication(drug),
                "subject": self._subject(),
                "effectivePeriod": {"start": item["d"], "end": last},
                "dateAsserted": item["d"],
                "informationSource": self.org(item["o"]),
                "dosage": [{"text": DRUGS[drug].sig}],
            }
            if item.get("by") and item["by"] != item["o"]:
                res["note"] = [{"text": f"処方元: {ORGS[item['by']].name}"}]
            text = f"{item['d']} {DRUGS[drug].name} {DRUGS[drug].sig} {days}日分"
            out.append((res, f"{text}（{ORGS[item['o']].name}）"))
        return out

    def procedure(self, item: Item, kind: str) -> tuple[Resource, str]:
        """Procedure for a surgery, a treatment (処置) or a month of dialysis."""
        proc: Procedure
        if kind == "surgeries":
            proc, category = SURGERIES[item["k"]], _cc("手術", SNOMED, "387713003")
        elif kind == "treatments":
            proc, category = TREATMENTS[item["k"]], _cc("処置", SNOMED, "277132007")
        else:
            proc, category = DIALYSIS, _cc("人工透析", SNOMED, "277132007")
        res: Resource = {
            "resourceType": "Procedure",
            "meta": {"profile": [JP + "JP_Procedure"]},
            "status": "completed",
            "category": category,
            "code": _cc(proc.name, SNOMED, proc.snomed),
            "subject": self._subject(),
            "performer": [{"actor": self.org(item["o"])}],
        }
        line = f"{item['d']} {proc.name}（{ORGS[item['o']].name}）"
        if kind == "dialysis":
            res["performedPeriod"] = {"start": item["s"], "end": item["d"]}
            res["note"] = [{"text": f"{item['n']}回"}]
            line = f"{item['s']}〜{item['d']} {proc.name} {item['n']}回（{ORGS[item['o']].name}）"
        else:
            res["performedDateTime"] = item["d"]
        return res, line

    def checks(self, item: Item) -> list[tuple[Resource, str]]:
        """Observations (LOINC) of one 特定健診; blood pressure as the 85354-9 panel."""
        out = []
        values = item["v"]
        performer = [self.org(item["o"])]
        for i, (name, code, unit, category) in enumerate(HC_FIELDS):
            if i == _BP[1]:
                continue
            res: Resource = {
                "resourceType": "Observation",
                "meta": {"profile": [JP + _obs_profile(category)]},
                "status": "final",
                "category": [_cc(category, TERMINOLOGY + "observation-category", category)],
                "subject": self._subject(),
                "effectiveDateTime": item["d"],
                "performer": performer,
            }
            if i == _BP[0]:
                res["code"] = _cc("血圧", LOINC, "85354-9")
                res["component"] = [
                    {
                        "code": _cc(HC_FIELDS[j][0], LOINC, HC_FIELDS[j][1]),
                        "valueQuantity": _quantity(values[j], HC_FIELDS[j][2]),
                    }
                    for j in _BP
                ]
                line = f"{item['d']} 血圧 {values[_BP[0]]:.0f}/{values[_BP[1]]:.0f} mmHg"
            else:
                res["code"] = _cc(name, LOINC, code)
                res["valueQuantity"] = _quantity(values[i], unit)
                line = f"{item['d']} {name} {values[i]} {unit}"
            out.append((res, line))
        return out


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _obs_profile(category: str) -> str:
    if category == "laboratory":
        return "JP_Observation_LabResult"
    if category == "vital-signs":
        return "JP_Observation_VitalSigns"
    return "JP_Observation_BodyMeasurement"
