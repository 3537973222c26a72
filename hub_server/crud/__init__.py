"""Database operations: keyword-only functions, no HTTP in them.

They raise the hub's domain errors (``hub_server.core.errors``); the app factory maps
those to HTTP. Functions take a ``Session`` (or a Core ``Connection`` on the hot path:
``create_case``, ``claim_idempotent``, ``record_nonce``, ``insert_cases_in_one_statement``)
and leave committing to the caller unless documented (``begin_idempotent`` and
``finish_idempotent`` commit, because other requests must see them at once).

Modules: ``cases`` (sealed cases and their recipients), ``events`` (numbered events per
recipient), ``idempotency`` (retried writes), ``case_batch`` (new cases in one
PostgreSQL statement), ``identities`` (callers, enrollment, nonces, challenges),
``revocation`` (CRLs and snapshots).
"""

from __future__ import annotations

from hub_server.crud.case_batch import UniqueTaken
from hub_server.crud.cases import (
    answer_case,
    case_meta,
    case_recipients,
    check_recipients,
    close_case,
    create_case,
    device_case,
    left_out_with_hybrid_key,
    mark_acked,
    purge_cases,
    set_destination,
)
from hub_server.crud.events import (
    append_event,
    case_event_data,
    events_after,
    events_with_data,
    notify,
)
from hub_server.crud.idempotency import (
    begin_idempotent,
    claim_idempotent,
    finish_idempotent,
    idempotency_record,
    purge_idempotency,
)
from hub_server.crud.identities import (
    DeviceKeyCache,
    Principal,
    consume_challenge,
    create_challenge,
    create_enrollment_token,
    create_hospital,
    create_hospital_token,
    create_operator,
    hospitals_nearest,
    principal_for,
    purge_expired,
    purge_expired_challenges,
    record_nonce,
    redeem_enrollment_token,
    redeem_hospital_token,
    revoke_device,
    revoked_devices,
)
from hub_server.crud.revocation import (
    CrlExpired,
    CrlNotNewer,
    current_revocation_version,
    ingest_crl,
    revoked_serials,
    snapshot,
)

__all__ = [
    "CrlExpired",
    "CrlNotNewer",
    "DeviceKeyCache",
    "Principal",
    "UniqueTaken",
    "answer_case",
    "append_event",
    "begin_idempotent",
    "case_event_data",
    "case_meta",
    "case_recipients",
    "check_recipients",
    "claim_idempotent",
    "close_case",
    "consume_challenge",
    "create_case",
    "create_challenge",
    "create_enrollment_token",
    "create_hospital",
    "create_hospital_token",
    "create_operator",
    "current_revocation_version",
    "device_case",
    "events_after",
    "events_with_data",
    "finish_idempotent",
    "hospitals_nearest",
    "idempotency_record",
    "ingest_crl",
    "left_out_with_hybrid_key",
    "mark_acked",
    "notify",
    "principal_for",
    "purge_cases",
    "purge_expired",
    "purge_expired_challenges",
    "purge_idempotency",
    "record_nonce",
    "redeem_enrollment_token",
    "redeem_hospital_token",
    "revoke_device",
    "revoked_devices",
    "revoked_serials",
    "set_destination",
    "snapshot",
]
