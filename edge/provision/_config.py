"""The device's settings file (``/etc/kyukyu/edge.env``, read by ``edge.settings``).

``KYUKYU_EDGE_*=value`` lines in python-dotenv syntax; provisioning sets the keys it
owns with python-dotenv (``edge.settings.settings_file_text``: quoted values) and
keeps every other line as the technician wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.settings import DeviceSettings, load_device_settings, settings_file_text

from ._layout import SERVICE_USER, DeviceLayout, ProvisionError, ensure_dir, write_if_changed

__all__ = ["read_settings", "update_config"]

_HEADER = "# kyukyu edge device settings (edge/settings.py); written by `kyukyu provision`.\n"


def update_config(layout: DeviceLayout, values: Mapping[str, object | None]) -> bool:
    """Set (or, for ``None``, remove) settings in the root's settings file; True if changed.

    Keys are ``DeviceSettings`` field names. The file is 0640 root:kyukyu-edge when
    that user exists (the service reads it), else 0640 root:root.
    """
    path = layout.config
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = _HEADER
    try:
        out = settings_file_text(text, values)
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None
    try:
        gid = layout.user(SERVICE_USER).gid
    except ProvisionError:
        gid = 0
    ensure_dir(path.parent, mode=0o755, uid=0, gid=0)
    return write_if_changed(path, out.encode(), mode=0o640, uid=0, gid=gid)


def read_settings(layout: DeviceLayout) -> DeviceSettings:
    """The device's settings from the root's settings file (and the environment)."""
    return load_device_settings(layout.config)
