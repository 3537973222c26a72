"""The hospital's receiving service: stream, open, store, dashboard, answer, FHIR export.

The platform only routes sealed bytes; the hospital opens them here, on its own
premises, with its own private key (see ``docs/hospital.md``)::

    hospital.settings     HospitalSettings (one pydantic-settings class, KYUKYU_HOSPITAL_*)
    hospital.identity     key pair, registration with the platform, the pinned hub key
    hospital.keyring      the keys a running service opens with, kept current with its key file
    hospital.store        the hospital's own database (SQLite or PostgreSQL, SQLModel)
    hospital.casefile     what the dashboard shows of a case Bundle
    hospital.auth         staff accounts: argon2 passwords, TOTP, sessions, CSRF, lockout
    hospital.service      the receiving service (sync.receiver) and live notifications
    hospital.web          the dashboard (FastAPI)
    hospital.fhir_export  a case as a FHIR R4 document Bundle to a folder or a FHIR server
"""

from __future__ import annotations

# A package of modules: its face is the modules other packages import.
__all__ = [
    "auth",
    "casefile",
    "errors",
    "fhir_export",
    "identity",
    "main",
    "schema",
    "settings",
    "store",
]
