"""The hub's work behind the routes: each module one job, no HTTP in them.

Routes parse, call one of these, and respond; the services raise the hub's domain
errors (``hub_server.core.errors``), which the app factory maps to HTTP.

- ``case_submission``: a sealed case in one idempotent transaction, then the push
- ``sealed_check``: the sealed envelope at the door (the device's, its signature, its
  recipients, v2 under ``require_pq``): for the case post and the closure
- ``case_progress``: a case's status, acks, answers and chosen destination
- ``summary_lookup``: the emergency summary look-up (audited)
- ``viewing_history``: the patient's own viewing history
- ``patient_proof``: the patient's certificate and card signature over a challenge
- ``nonces``: recording a deferred request nonce
- ``identity_revocation``: revoking a device, hospital, operator or technician (audited;
  its open streams end in every process)
- ``crl_ingestion``: a CA's CRL into the revocation set (refuses older and expired CRLs)
- ``hospital_registry``: hospital registration, enrollment tokens, the signed directory
- ``trust_bundle``: the signed trust bundle (pinned roots and CVC CA keys)
- ``device_roster``: the signed device roster (its version rises across restores) and
  device-key documents for hospitals
- ``backups``: backing the database up and restoring it with a signed restore marker

Admission control for case posts is an HTTP dependency: ``hub_server.api.admission``.
"""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "backups",
    "crl_ingestion",
    "device_roster",
    "identity_revocation",
    "patient_proof",
    "trust_bundle",
]
