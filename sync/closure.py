"""中止 / 不搬送: the closure document, sealed like the case it closes.

When the crew ends a case that was sent (transport refused, death at the scene,
handed to another team ...), every hospital that was asked is told, with the
reason. The reason is about the patient (現場死亡確認 is a fact about a person),
so it travels sealed: the same ``sync.envelope`` sealing as the case
(``seal_case``; v2 when every recipient has an X-Wing key, as for the case, and v2 only
where the platform requires it: then a recipient without one is left out and phoned),
same case id, the case's recipients, signed by the device. The
platform relays it without opening it. The payload is JSON::

    {"type": "closure", "case_id": "...", "reason": "搬送拒否",
     "closed_at": "2026-12-06T03:00:00+00:00"}

``reason`` is one of ``CLOSURE_REASONS``; ``open_closure`` refuses anything else
(``MalformedEnvelope``), so a receiver records a bad closure as a rejection and
reads on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync._errors import MalformedEnvelope
from sync.envelope import SealedCase
from sync.reasons import CLOSURE_REASONS
from sync.seal import DeviceKeyLookup, HospitalKey, RecipientKeys, open_case, seal_json

__all__ = ["CLOSURE_REASONS", "Closure", "open_closure", "seal_closure"]

_REASONS = {ja for ja, _ in CLOSURE_REASONS}


@dataclass(frozen=True)
class Closure:
    """An opened, checked closure."""

    case_id: str
    device_id: str
    reason: str
    closed_at: datetime


def seal_closure(
    *,
    case_id: str,
    reason: str,
    closed_at: datetime,
    device_id: str,
    device_key: Ed25519PrivateKey,
    recipients: Mapping[str, RecipientKeys],
    version: int | None = None,
) -> bytes:
    """The sealed closure of ``case_id`` for ``recipients`` (the hospitals sent the case;
    under ``require_pq`` those of them with a hybrid key). ``version`` as for
    ``seal_case``: None follows the recipients' keys, 2 where the platform requires it."""
    if reason not in _REASONS:
        raise ValueError("not a closure reason")
    doc = {
        "type": "closure",
        "case_id": case_id,
        "reason": reason,
        "closed_at": closed_at.isoformat(),
    }
    return seal_json(
        doc,
        case_id=case_id,
        device_id=device_id,
        device_key=device_key,
        recipients=recipients,
        version=version,
    )


def open_closure(
    data: bytes | SealedCase,
    *,
    hospital_id: str,
    hospital_key: HospitalKey,
    device_key_for: DeviceKeyLookup,
    expected_case_id: str,
) -> Closure:
    """Check and open a closure; an ``EnvelopeError`` for anything that is not one."""
    opened = open_case(
        data,
        hospital_id=hospital_id,
        hospital_key=hospital_key,
        device_key_for=device_key_for,
        expected_case_id=expected_case_id,
    )
    try:
        doc = json.loads(opened.payload)
    except ValueError:
        raise MalformedEnvelope("closure is not JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != "closure":
        raise MalformedEnvelope("not a closure document")
    reason, at = doc.get("reason"), doc.get("closed_at")
    if doc.get("case_id") != opened.case_id or reason not in _REASONS or not isinstance(at, str):
        raise MalformedEnvelope("closure without its case, reason or time")
    try:
        closed_at = datetime.fromisoformat(at)
    except ValueError:
        raise MalformedEnvelope("closure time unreadable") from None
    if closed_at.tzinfo is None:
        raise MalformedEnvelope("closure time without its zone")
    return Closure(opened.case_id, opened.device_id, str(reason), closed_at)
