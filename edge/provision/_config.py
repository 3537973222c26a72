"""The device's settings file (``/etc/kyukyu/edge.env``, read by ``edge.settings``).

``KEY=value`` lines with the ``KYUKYU_EDGE_`` prefix; provisioning updates the
keys it owns and keeps every other line as the technician wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.settings import DeviceSettings, load_device_settings

from ._layout import SERVICE_USER, DeviceLayout, ProvisionError, ensure_dir, write_if_changed

__all__ = ["read_settings", "update_config"]

_PREFIX = "KYUKYU_EDGE_"
_HEADER = "# kyukyu edge device settings (edge/settings.py); written by `kyukyu provision`.\n"


def _line_key(line: str) -> str | None:
    s = line.strip()
    if not s or s.startswith("#") or "=" not in s:
        return None
    return s.partition("=")[0].strip()


def update_config(layout: DeviceLayout, values: Mapping[str, object | None]) -> bool:
    """Set (or, for ``None``, remove) settings in the root's settings file; True if changed.

    Keys are ``DeviceSettings`` field names. The file is 0640 root:kyukyu-edge when
    that user exists (the service reads it), else 0640 root:root.
    """
    fields = DeviceSettings.model_fields
    for key in values:
        if key not in fields:
            raise ProvisionError(f"unknown setting {key}")
    path = layout.config
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        lines = [_HEADER]
    wanted = {f"{_PREFIX}{k.upper()}": v for k, v in values.items()}
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        lk = _line_key(line)
        if lk is not None and lk in wanted:
            seen.add(lk)
            value = wanted[lk]
            if value is not None:
                out.append(f"{lk}={_format(value)}\n")
            continue
        out.append(line if line.endswith("\n") else line + "\n")
    for key, value in wanted.items():
        if key not in seen and value is not None:
            out.append(f"{key}={_format(value)}\n")
    try:
        gid = layout.user(SERVICE_USER).gid
    except ProvisionError:
        gid = 0
    ensure_dir(path.parent, mode=0o755, uid=0, gid=0)
    return write_if_changed(path, "".join(out).encode(), mode=0o640, uid=0, gid=gid)


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ProvisionError("a setting may not contain a line break")
    return text


def read_settings(layout: DeviceLayout) -> DeviceSettings:
    """The device's settings from the root's settings file (and the environment)."""
    return load_device_settings(layout.config)
