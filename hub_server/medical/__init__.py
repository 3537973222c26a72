"""The medical-source adapter of the platform and the synthetic source that ships.

The hub asks a :class:`MedicalSource` for a patient's 救急用サマリー by the
patient key (the subject CN of the user-authentication certificate: an opaque
id, no name). The synthetic source lives in its own ``med_*`` tables::

    source = open_source("sqlite:///hub.db")
    bundle = source.summary(patient_key, now=datetime.now(UTC))  # FHIR R4B document

``seed()`` fills it with realistic Japanese patients (a caller may link some of
them to an identity it makes, such as the demo's virtual cards:
``kyukyu.testing.seed_with_cards``); ``build_summary_bundle()`` is the pure function
behind ``summary()``. See docs/medical-source.md.
"""

from __future__ import annotations

from hub_server.medical._bundle import SECTIONS, build_summary_bundle
from hub_server.medical._errors import (
    MedicalRecordUnreadable,
    MedicalSourceError,
    MedicalSourceUnavailable,
)
from hub_server.medical._seed import LinkPatient, SeedReport, seed
from hub_server.medical._store import MedicalSource, SqlMedicalSource, open_source
from hub_server.medical._windows import EMERGENCY, FULL, Window

__all__ = [
    "EMERGENCY",
    "FULL",
    "SECTIONS",
    "LinkPatient",
    "MedicalRecordUnreadable",
    "MedicalSource",
    "MedicalSourceError",
    "MedicalSourceUnavailable",
    "SeedReport",
    "SqlMedicalSource",
    "Window",
    "build_summary_bundle",
    "open_source",
    "seed",
]
