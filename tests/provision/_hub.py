"""A real hub (hub_server under uvicorn, SQLite) for the provisioning and doctor tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kyukyu.testing import serve_in_thread
from sync import SignedHttp
from sync.signed import b64e
from sync.signing import public_key_to_b64
from tests.sync._realhub import RealHub, make_real_hub


@dataclass
class LiveHub:
    real: RealHub
    url: str
    staff_key_file: Path

    def operator(self) -> SignedHttp:
        return self.real.operator(self.url)

    def token(self) -> str:
        with self.operator() as op:
            out = op.request_json(
                "POST", "/v1/enrollment-tokens", body={"fire_department": "テスト消防本部"}
            )
        return str(out["token"])

    @property
    def hub_key_b64(self) -> str:
        return public_key_to_b64(self.real.state.hub_key.public_key)


@contextmanager
def live_hub(tmp_path: Path, hospitals: int = 2) -> Iterator[LiveHub]:
    real = make_real_hub(tmp_path / "hub")
    raw = real.operator_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    staff = tmp_path / "operator-key.json"
    staff.write_text(
        json.dumps({"key_id": f"operator:{real.operator_id}", "private_key": b64e(raw)})
    )
    staff.chmod(0o600)
    with serve_in_thread(real.app) as url:
        hub = LiveHub(real, url, staff)
        with hub.operator() as op:
            for i in range(hospitals):
                op.request_json(
                    "POST",
                    "/v1/hospitals",
                    body={
                        "name": f"テスト病院{i}",
                        "lat": 35.68 + i * 0.01,
                        "lon": 139.76,
                        "hpke_public_key": public_key_to_b64(
                            X25519PrivateKey.generate().public_key()  # type: ignore[arg-type]
                        ),
                        "signing_public_key": hub.hub_key_b64,
                    },
                )
        try:
            yield hub
        finally:
            real.state.engine.dispose()
