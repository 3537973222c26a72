"""Who may call the hub: operators, technicians, devices and hospitals, their enrollment,
the signing keys of requests, and the single-use values (nonces, challenges).

One module per reason to change:

- ``keys``: checking and parsing the public keys callers register;
- ``operators``: operators and technicians;
- ``tokens``: the one-time enrollment token (one mechanism; its kind says what it
  enrolls: a device or a hospital);
- ``devices``: enrolling and revoking devices;
- ``hospitals``: registering hospitals and finding the nearest (``geo``: the distance);
- ``principals``: who signed a request (``Principal``), and the device key cache;
- ``replay``: nonces and challenges, each used once.
"""

from __future__ import annotations

from hub_server.crud.identities.devices import (
    create_enrollment_token,
    redeem_enrollment_token,
    revoke_device,
    revoked_devices,
)
from hub_server.crud.identities.hospitals import (
    create_hospital,
    create_hospital_token,
    hospitals_nearest,
    redeem_hospital_token,
)
from hub_server.crud.identities.operators import ROLES, create_operator
from hub_server.crud.identities.principals import DeviceKeyCache, Principal, principal_for
from hub_server.crud.identities.replay import (
    consume_challenge,
    create_challenge,
    purge_expired,
    purge_expired_challenges,
    record_nonce,
)

__all__ = [
    "ROLES",
    "DeviceKeyCache",
    "Principal",
    "consume_challenge",
    "create_challenge",
    "create_enrollment_token",
    "create_hospital",
    "create_hospital_token",
    "create_operator",
    "hospitals_nearest",
    "principal_for",
    "purge_expired",
    "purge_expired_challenges",
    "record_nonce",
    "redeem_enrollment_token",
    "redeem_hospital_token",
    "revoke_device",
    "revoked_devices",
]
