"""Where an installed role keeps its files (docs/deploy.md): each path spelled once.

Stdlib only and in the base layer, so that every role's settings, the device's
installer and doctor, and the CLI import the same constant (and the CLI stays light).
"""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = [
    "CONFIG_DIR",
    "CREDENTIALS_DIR",
    "EDGE_CONFIG",
    "EDGE_DATA_DIR",
    "HOSPITAL_CONFIG",
    "HOSPITAL_DATA_DIR",
    "HUB_CONFIG",
    "HUB_DATA_DIR",
    "HUB_DEV_DB_URL",
    "HUB_KEY_CREDENTIAL",
    "JPKI_ROOTS_DIR",
    "PLATFORM_CA",
]

CONFIG_DIR = PurePosixPath("/etc/kyukyu")
#: Read by systemd (``LoadCredential``), not by the services.
CREDENTIALS_DIR = CONFIG_DIR / "credentials"
#: The J-LIS roots patient certificates chain to.
JPKI_ROOTS_DIR = CONFIG_DIR / "jpki-roots"
#: The CA of the platform's TLS certificate, on a device.
PLATFORM_CA = CONFIG_DIR / "platform-ca.pem"
EDGE_CONFIG = CONFIG_DIR / "edge.env"
HUB_CONFIG = CONFIG_DIR / "hub.env"
HOSPITAL_CONFIG = CONFIG_DIR / "hospital.env"
EDGE_DATA_DIR = PurePosixPath("/var/lib/kyukyu-edge")
HUB_DATA_DIR = PurePosixPath("/var/lib/kyukyu-hub")
HOSPITAL_DATA_DIR = PurePosixPath("/var/lib/kyukyu-hospital")
#: The hub's signing key among its systemd credentials (and in a workers run's own tmp).
HUB_KEY_CREDENTIAL = "hub-key.pem"
#: The hub's database when none is configured: SQLite in the working directory.
HUB_DEV_DB_URL = "sqlite:///kyukyu-hub.db"
