"""A device's settings file and key, as ``kyukyu provision enroll`` leaves them (demo, tests)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.settings import settings_file_text
from sync.signing import public_key_to_b64

__all__ = ["write_device_settings"]


def write_device_settings(
    data_dir: Path,
    *,
    device_key: Ed25519PrivateKey,
    hub_public_key: Ed25519PublicKey,
    **settings: object,
) -> Path:
    """Write ``data_dir/device-key.pem`` (0600) and ``data_dir/edge.env``; return the file.

    ``settings`` are ``DeviceSettings`` fields (``hub_url``, ``device_id``, ``roots_dir``,
    ``base_lat`` ...); the device is in test mode (test roots) unless they say otherwise.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "device-key.pem"
    key_file.write_bytes(
        device_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "hub_public_key": public_key_to_b64(hub_public_key),
        "device_key_file": key_file,
        "test_roots": "true",
        **settings,
    }
    config = data_dir / "edge.env"
    config.write_text(settings_file_text("", values), encoding="utf-8")
    return config
