"""The technician's device set-up: install, trust anchors, enrollment, retirement.

``install`` puts the hardware files, units and service users into a root;
the other steps work on the same ``DeviceLayout`` (``/`` on the device, a
directory for a staging image or a test). The CLI is ``kyukyu provision``.
"""

from __future__ import annotations

from ._config import read_settings, update_config
from ._install import ROLES, InstallReport, Role, default_kyukyu_bin, install
from ._layout import (
    CONFIG,
    DATA_DIR,
    DEVICE_KEY,
    HUB_CA,
    ROOTS_DIR,
    SERVICE_USER,
    DeviceLayout,
    ProvisionError,
    hardware_dir,
)
from ._trust import RootOutcome, TrustReport, install_roots

__all__ = [
    "CONFIG",
    "DATA_DIR",
    "DEVICE_KEY",
    "HUB_CA",
    "ROLES",
    "ROOTS_DIR",
    "SERVICE_USER",
    "DeviceLayout",
    "InstallReport",
    "ProvisionError",
    "Role",
    "RootOutcome",
    "TrustReport",
    "default_kyukyu_bin",
    "hardware_dir",
    "install",
    "install_roots",
    "read_settings",
    "update_config",
]
