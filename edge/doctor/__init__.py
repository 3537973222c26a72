"""``kyukyu doctor``: is this device ready? One line per check, OK / WARN / FAIL with the fix.

Checks, in order: readers seen by pcscd and by nfcpy, udev rules and module
blacklist in place, a card test when a card is on the reader, the platform
reachable, the device still enrolled (not revoked), clock skew against the
platform, the device key (file, mode, owner, age), the pinned JPKI roots
(present, loadable, expiry), the revocation snapshot (signature, age), disk
space, sealed cases waiting in the outbox.

Each check is a function of its inputs, given explicitly (the settings, the layout,
the time, the platform's answer), returning one ``Check``. ``run_doctor`` works out
the shared inputs once (the settings, ``now``, one ask of the platform's health
endpoint: ``PlatformProbe``) and passes them; no check depends on another having run.
What touches the outside (the clock, the HTTP transport, the PC/SC and nfcpy
enumerations, disk thresholds) is injectable through ``DoctorContext`` so broken
set-ups can be reproduced in tests. Messages carry no patient or certificate-subject
data.

- ``_report``: ``Check``, ``DoctorReport``
- ``_hardware``: readers, udev rules, module blacklist, card test
- ``_platform``: the platform probe, enrollment, clock
- ``_device``: device key, JPKI roots, revocation snapshot, disk, outbox
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge.provision import DeviceLayout
from edge.settings import DeviceSettings, SettingsError, load_device_settings

from ._device import (
    check_device_key,
    check_disk,
    check_outbox,
    check_revocation,
    check_roots,
)
from ._hardware import (
    check_blacklist,
    check_card,
    check_nfcpy,
    check_pcscd,
    check_udev,
    loaded_modules,
    nfcpy_find,
    pcsc_list,
)
from ._platform import (
    PlatformProbe,
    check_clock,
    check_enrollment,
    check_platform,
    device_status_of,
    probe_platform,
)
from ._report import Check, DoctorReport, Status, fail

__all__ = ["Check", "DoctorContext", "DoctorReport", "PlatformProbe", "Status", "run_doctor"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DoctorContext:
    """What the checks look at; every outside dependency can be replaced."""

    layout: DeviceLayout = field(default_factory=DeviceLayout)
    clock: Callable[[], datetime] = _utcnow
    transport: httpx.BaseTransport | None = None
    timeout_s: float = 5.0
    pcsc_list: Callable[[], list[str]] = pcsc_list
    nfcpy_find: Callable[[], list[tuple[int, int]]] = nfcpy_find
    loaded_modules: Callable[[], set[str] | None] = loaded_modules
    card_test: bool = True
    card_timeout_s: float = 0.3
    disk_warn_bytes: int = 500 * 1024 * 1024
    disk_fail_bytes: int = 50 * 1024 * 1024
    settings: DeviceSettings | None = None
    # The settings file when it is not the layout's (``kyukyu edge --config``).
    config: Path | None = None


def run_doctor(ctx: DoctorContext | None = None) -> DoctorReport:
    """Run every check; never raises for a broken device (that is what the report is for)."""
    c = ctx or DoctorContext()
    try:
        s = c.settings or load_device_settings(c.config or c.layout.config)
    except SettingsError as exc:
        return DoctorReport(
            [
                fail(
                    "settings",
                    f"settings invalid ({exc.detail})",
                    "端末の設定に誤りがあります",
                    f"fix {c.config or c.layout.config}",
                    "設定ファイルを直す",
                )
            ]
        )
    layout = c.layout
    now = c.clock()
    probe = probe_platform(s, layout, clock=c.clock, transport=c.transport, timeout_s=c.timeout_s)
    device_status = device_status_of(s, layout, transport=c.transport, timeout_s=c.timeout_s)
    return DoctorReport(
        [
            check_pcscd(s, c.pcsc_list),
            check_nfcpy(s, c.nfcpy_find),
            check_udev(layout),
            check_blacklist(layout, c.loaded_modules),
            check_card(s, layout, now, enabled=c.card_test, timeout_s=c.card_timeout_s),
            check_platform(s, probe),
            check_enrollment(s, probe, device_status),
            check_clock(probe),
            check_device_key(s, layout, now),
            check_roots(s, layout, now),
            check_revocation(s, layout, now),
            check_disk(s, layout, warn_bytes=c.disk_warn_bytes, fail_bytes=c.disk_fail_bytes),
            check_outbox(s, layout),
        ]
    )
