"""The append-only, hash-chained audit trail.

Each row stores ``hash = sha256(prev_hash || canonical_json(row))``; the single
``audit_head`` row holds the last sequence number and hash. A row enters one way
(``chain``): it is written to ``audit_pending`` with the action it records, and
``chain_pending`` links pending rows into the chain under the head lock (a row lock on
PostgreSQL, the write lock on SQLite), so the chain never forks even with several hub
processes. ``append_audit`` does both in the caller's transaction; a case stored on
PostgreSQL writes its pending row inside the case statement (``crud.case_batch``) and
the hub chains it right after the commit (``HubState.chain_audit_soon``).

Modules: ``chain`` (the hash, appending and chaining), ``_postgres`` (PostgreSQL's
one-statement move of pending rows), ``verify`` (recomputing the chain), ``checkpoint``
(signed heads kept outside the database), ``restore`` (signed restore markers: a restore
told apart from a truncation).
"""

from __future__ import annotations

from hub_server.core.audit.chain import GENESIS, append_audit, chain_pending, entry_hash
from hub_server.core.audit.checkpoint import (
    CHECKPOINT_FIELD,
    CHECKPOINT_FORMAT,
    read_checkpoints,
    signed_checkpoint,
    verify_against_checkpoints,
)
from hub_server.core.audit.restore import (
    DEFAULT_EVENT_GAP,
    RESTORE_ACTION,
    RESTORE_FORMAT,
    event_gaps,
    markers_in_chain,
    record_restore,
)
from hub_server.core.audit.verify import AuditVerdict, verify_chain

__all__ = [
    "CHECKPOINT_FIELD",
    "CHECKPOINT_FORMAT",
    "DEFAULT_EVENT_GAP",
    "GENESIS",
    "RESTORE_ACTION",
    "RESTORE_FORMAT",
    "AuditVerdict",
    "append_audit",
    "chain_pending",
    "entry_hash",
    "event_gaps",
    "markers_in_chain",
    "read_checkpoints",
    "record_restore",
    "signed_checkpoint",
    "verify_against_checkpoints",
    "verify_chain",
]
