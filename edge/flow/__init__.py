"""The case flow: one patient case as a state machine, independent of the UI.

``CaseFlow`` (``_flow``) holds the case in memory and moves it through the
stages of ``Stage``; the UI renders its ``CaseView`` and calls its intents.
It reaches the card layer, the platform and the outbox only through the
Protocols of ``_ports``: ``JpkiCardReading`` is the one adapter over
``edge.jpki.read``; ``open_flow(settings)`` wires the real parts from
``edge.settings.DeviceSettings``.
"""

from __future__ import annotations

from ._card import JpkiCardReading
from ._drugs import DRUG_DATES_SEP
from ._flow import CaseFlow, DestinationNotAccepted, DeviceIdentity
from ._model import (
    ASSURANCE_TEXT,
    CERTIFICATE_TEXT,
    CHIEF_COMPLAINTS,
    CLOSURE_REASONS,
    CONSENT_TEXT,
    DELIVERY_TEXT,
    JCS_CHOICES,
    JST,
    PLAUSIBLE,
    REFUSAL_REASONS,
    SHOCK_INDEX,
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
    out_of_range,
)
from ._ports import AttributesSeen, CardFacts, CardReading, CardRequest, CaseOutbox, Platform
from ._wiring import load_revocation, open_card_waiter, open_flow

__all__ = [
    "ASSURANCE_TEXT",
    "CERTIFICATE_TEXT",
    "CHIEF_COMPLAINTS",
    "CLOSURE_REASONS",
    "CONSENT_TEXT",
    "DELIVERY_TEXT",
    "DRUG_DATES_SEP",
    "JCS_CHOICES",
    "JST",
    "PLAUSIBLE",
    "REFUSAL_REASONS",
    "SHOCK_INDEX",
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
    "JpkiCardReading",
    "Notice",
    "Platform",
    "Stage",
    "SummarySection",
    "Text",
    "VitalField",
    "VitalsDraft",
    "abnormal",
    "load_revocation",
    "open_card_waiter",
    "open_flow",
    "out_of_range",
]
