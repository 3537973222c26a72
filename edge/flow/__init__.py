"""The case flow: one patient case as a state machine, independent of the UI.

``CaseFlow`` (``_flow``) holds the case in memory and moves it through the
stages of ``Stage``; the UI renders its ``CaseView`` and calls its intents.
It reaches the card layer, the platform and the outbox only through the
Protocols of ``_ports``: ``JpkiCardReading`` is the one adapter over
``edge.jpki.read``; ``open_flow(settings)`` wires the real parts from
``edge.settings.DeviceSettings``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._drugs import DRUG_DATES_SEP
from ._model import (
    ASSURANCE_TEXT,
    AVAILABILITY_ITEM,
    AVAILABILITY_STATUSES,
    CERTIFICATE_TEXT,
    CHIEF_COMPLAINTS,
    CLOSURE_REASONS,
    CONSENT_TEXT,
    DELIVERY_TEXT,
    DERIVED_MARKS,
    ECG_RHYTHMS,
    EMS_TIMES,
    HEARD_KINDS,
    JCS_CHOICES,
    JCS_SUFFIXES,
    JST,
    O2_PRESETS,
    PLAUSIBLE,
    PUPIL_REFLEXES,
    PUPIL_SIZES,
    REFUSAL_REASONS,
    ROUTE_TEXT,
    SHOCK_INDEX,
    TREATMENTS,
    VITAL_FIELD,
    VITAL_FIELDS,
    VITAL_LABELS,
    VITAL_UNITS,
    CaseView,
    Consent,
    EraOffer,
    Evidence,
    HospitalRow,
    IdentityMethod,
    Notice,
    Stage,
    SummarySection,
    Text,
    VitalField,
    VitalsDraft,
    abnormal,
    jcs_code,
    jcs_parts,
    out_of_range,
)
from ._ports import AttributesSeen, CardFacts, CardReading, CardRequest, CaseOutbox, Platform

if TYPE_CHECKING:
    from ._card import JpkiCardReading
    from ._flow import CaseFlow, DestinationNotAccepted, DeviceIdentity
    from ._incident import AGE_BANDS, CATEGORY_JA, IncidentDesk, TagPatient, problem_text
    from ._wiring import load_revocation, open_card_waiter, open_flow

# The flow itself and its wiring (the card layer, cryptography, pyscard, the platform
# client) load on first use: the standby screen is drawn before the flow opens
# (cold start), and it needs only the view model above.
_LAZY = {
    "JpkiCardReading": "._card",
    "CaseFlow": "._flow",
    "DestinationNotAccepted": "._flow",
    "DeviceIdentity": "._flow",
    "load_revocation": "._wiring",
    "open_card_waiter": "._wiring",
    "open_flow": "._wiring",
    "AGE_BANDS": "._incident",
    "CATEGORY_JA": "._incident",
    "IncidentDesk": "._incident",
    "TagPatient": "._incident",
    "problem_text": "._incident",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AGE_BANDS",
    "ASSURANCE_TEXT",
    "AVAILABILITY_ITEM",
    "AVAILABILITY_STATUSES",
    "CATEGORY_JA",
    "CERTIFICATE_TEXT",
    "CHIEF_COMPLAINTS",
    "CLOSURE_REASONS",
    "CONSENT_TEXT",
    "DELIVERY_TEXT",
    "DERIVED_MARKS",
    "DRUG_DATES_SEP",
    "ECG_RHYTHMS",
    "EMS_TIMES",
    "HEARD_KINDS",
    "JCS_CHOICES",
    "JCS_SUFFIXES",
    "JST",
    "O2_PRESETS",
    "PLAUSIBLE",
    "PUPIL_REFLEXES",
    "PUPIL_SIZES",
    "REFUSAL_REASONS",
    "ROUTE_TEXT",
    "SHOCK_INDEX",
    "TREATMENTS",
    "VITAL_FIELD",
    "VITAL_FIELDS",
    "VITAL_LABELS",
    "VITAL_UNITS",
    "AttributesSeen",
    "CardFacts",
    "CardReading",
    "CardRequest",
    "CaseFlow",
    "CaseOutbox",
    "CaseView",
    "Consent",
    "DestinationNotAccepted",
    "DeviceIdentity",
    "EraOffer",
    "Evidence",
    "HospitalRow",
    "IdentityMethod",
    "IncidentDesk",
    "JpkiCardReading",
    "Notice",
    "Platform",
    "Stage",
    "SummarySection",
    "TagPatient",
    "Text",
    "VitalField",
    "VitalsDraft",
    "abnormal",
    "jcs_code",
    "jcs_parts",
    "load_revocation",
    "open_card_waiter",
    "open_flow",
    "out_of_range",
    "problem_text",
]
