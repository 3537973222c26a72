"""The technician's device set-up: install, trust anchors, enrollment, retirement.

``install`` puts the hardware files, units and service users into a root;
the other steps work on the same ``DeviceLayout`` (``/`` on the device, a
directory for a staging image or a test). The CLI is ``kyukyu provision``.
"""

from __future__ import annotations

from ._config import read_settings, update_config
from ._enroll import (
    EnrollReport,
    RefreshReport,
    RetireReport,
    enroll,
    load_device_key,
    load_snapshot,
    refresh,
    refresh_device,
    retire,
    unsent_cases,
)
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
    "EnrollReport",
    "InstallReport",
    "ProvisionError",
    "RefreshReport",
    "RetireReport",
    "Role",
    "RootOutcome",
    "TrustReport",
    "default_kyukyu_bin",
    "enroll",
    "hardware_dir",
    "install",
    "install_roots",
    "load_device_key",
    "load_snapshot",
    "read_settings",
    "refresh",
    "refresh_device",
    "retire",
    "unsent_cases",
    "update_config",
]
