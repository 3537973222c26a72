"""Trust for devices: the signed trust bundle, and the platform-side certificate check.

``GET /v1/trust-bundle``: roots (by fingerprint) and CVC CA keys (by key id) the
platform trusts, signed by the hub key; devices accept it only under the pinned
hub key and never roll its ``version`` back (``edge.trust_bundle``).
``POST /v1/certificate-checks`` ``{"certificate": base64 DER}``: a patient
certificate whose issuer the device does not pin, checked against the
platform's roots; a signed ``certificate_check`` answer (``status``
``verified_by_platform`` or ``untrusted`` with the error).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hub_server.api.deps import HubDep, SignedDep
from hub_server.api.routes._common import ERRORS
from hub_server.core.errors import InvalidInput, NotAllowed
from hub_server.services import trust_bundle
from sync.signed import b64d_std

router = APIRouter(tags=["trust"], responses=ERRORS)


class CertificateCheckRequest(BaseModel):
    certificate: str = Field(max_length=16_384, description="base64 DER")


@router.get("/v1/trust-bundle")
def get_trust_bundle(caller: SignedDep, hub: HubDep) -> dict[str, Any]:
    """The platform's trust bundle, signed by the hub key."""
    if caller.kind == "hospital":
        raise NotAllowed("forbidden", "devices and staff fetch the trust bundle")
    return hub.hub_key.sign_document("trust_bundle", trust_bundle.bundle_body(hub))


@router.post("/v1/certificate-checks")
def post_certificate_check(
    body: CertificateCheckRequest, caller: SignedDep, hub: HubDep
) -> dict[str, Any]:
    """Check a patient certificate against the platform's roots (signed answer)."""
    if caller.kind != "device":
        raise NotAllowed("forbidden", "devices ask for certificate checks")
    try:
        der = b64d_std(body.certificate)
    except ValueError:
        raise InvalidInput("malformed_certificate", "certificate must be base64 DER") from None
    return hub.hub_key.sign_document("certificate_check", trust_bundle.check_certificate(hub, der))
