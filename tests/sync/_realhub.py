"""The real hub (hub_server.create_app) set up for sync tests: operator, hospitals, device.

Everything after the first operator goes through the hub's HTTP API with the
real request signing: hospitals are registered by the operator, the device
enrolls with a one-time token through ``PlatformClient.enroll``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import SignedHttp
from sync.client import PlatformClient
from sync.signing import public_key_to_b64
from tests.sync._net import Hospital, World


@dataclass
class RealHub:
    state: Any
    app: Any
    operator_key: Ed25519PrivateKey
    operator_id: str

    def operator(self, base_url: str, transport: httpx.BaseTransport | None = None) -> SignedHttp:
        return SignedHttp(
            base_url,
            key=self.operator_key,
            key_id=f"operator:{self.operator_id}",
            transport=transport,
        )


def make_real_hub(tmp_path: Path, **settings: Any) -> RealHub:
    from hub_server.core.config import Settings
    from hub_server.main import build_state, create_app
    from kyukyu.testing import add_operator

    tmp_path.mkdir(parents=True, exist_ok=True)
    s = Settings(
        db_url=settings.pop("db_url", None) or f"sqlite:///{tmp_path / 'hub.db'}",
        environment="test",
        sse_keepalive_seconds=settings.pop("sse_keepalive_seconds", 0.5),
        **settings,
    )
    state = build_state(s)
    operator = add_operator(state, "sync-test-operator")
    return RealHub(
        state=state,
        app=create_app(s, state=state),
        operator_key=operator.key,
        operator_id=operator.id,
    )


def populate(
    hub: RealHub,
    base_url: str,
    world: World,
    n_hospitals: int,
    *,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Register ``n_hospitals`` hospitals and enroll the world's device (ids into ``world``)."""
    op = hub.operator(base_url, transport)
    world.hospitals = []
    for i in range(n_hospitals):
        h = Hospital(id="")
        out = op.request_json(
            "POST",
            "/v1/hospitals",
            body={
                "name": f"テスト病院{i}",
                "lat": 35.68 + i * 0.01,
                "lon": 139.76,
                "hpke_public_key": public_key_to_b64(h.hpke.public_key()),  # type: ignore[arg-type]
                "signing_public_key": public_key_to_b64(h.signing.public_key()),
            },
        )
        h.id = out["hospital_id"]
        world.hospitals.append(h)
    token = op.request_json(
        "POST", "/v1/enrollment-tokens", body={"fire_department": "テスト消防本部"}
    )["token"]
    op.close()
    device = PlatformClient(base_url, key=world.device_key, transport=transport)
    world.device_id = device.enroll(token, "救急車テスト1")
    device.close()


def hub_public_key(hub: RealHub) -> Any:
    return hub.state.hub_key.public_key
