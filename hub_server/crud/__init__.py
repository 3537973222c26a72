"""Database operations: keyword-only functions, no HTTP in them.

Functions take a ``Session`` (or a Core ``Connection`` on the hot path: ``create_case``,
``claim_idempotent``, ``record_nonce``) and leave committing to the caller unless
documented (``begin_idempotent`` and ``finish_idempotent`` commit, because other
requests must see them at once).
"""

from __future__ import annotations

from hub_server.crud.cases import (
    answer_case,
    begin_idempotent,
    case_event_data,
    case_exists,
    case_meta,
    check_recipients,
    claim_idempotent,
    create_case,
    events_after,
    finish_idempotent,
    mark_acked,
    notify,
    purge_cases,
    set_destination,
    unknown_recipients,
)
from hub_server.crud.identities import (
    Principal,
    consume_challenge,
    create_challenge,
    create_enrollment_token,
    create_hospital,
    create_operator,
    hospitals_nearest,
    principal_for,
    purge_expired,
    record_nonce,
    redeem_enrollment_token,
    revoke_device,
)
from hub_server.crud.revocation import (
    current_revocation_version,
    ingest_crl,
    revoked_serials,
    snapshot,
)

__all__ = [
    "Principal",
    "answer_case",
    "begin_idempotent",
    "case_event_data",
    "case_exists",
    "case_meta",
    "check_recipients",
    "claim_idempotent",
    "consume_challenge",
    "create_case",
    "create_challenge",
    "create_enrollment_token",
    "create_hospital",
    "create_operator",
    "current_revocation_version",
    "events_after",
    "finish_idempotent",
    "hospitals_nearest",
    "ingest_crl",
    "mark_acked",
    "notify",
    "principal_for",
    "purge_cases",
    "purge_expired",
    "record_nonce",
    "redeem_enrollment_token",
    "revoke_device",
    "revoked_serials",
    "set_destination",
    "snapshot",
    "unknown_recipients",
]
