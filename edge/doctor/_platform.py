"""The platform: reachable, the device still enrolled, the clock against the platform's.

The platform's health endpoint is asked once (``probe_platform``); the three checks read
that one answer, so none of them depends on another having run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from edge.provision import DeviceLayout, ProvisionError
from edge.settings import DeviceSettings

from ._report import Check, fail, ok, warn

# The hub refuses requests whose timestamp is off by more than this (hub default).
HUB_MAX_SKEW_S = 300.0
CLOCK_WARN_S = 10.0


@dataclass(frozen=True)
class PlatformProbe:
    """What one ``GET /v1/health`` told: whether the platform answered (``why`` not),
    and its clock (``hub_date``) against ours at the middle of the request."""

    up: bool
    why: str = ""
    hub_date: datetime | None = None
    local_at_hub_date: datetime | None = None


def probe_platform(
    s: DeviceSettings,
    layout: DeviceLayout,
    *,
    clock: Callable[[], datetime],
    transport: httpx.BaseTransport | None,
    timeout_s: float,
) -> PlatformProbe:
    """Ask the platform's health endpoint (unsigned: no key needed) once."""
    if not s.hub_url:
        return PlatformProbe(up=False, why="not configured")
    try:
        with httpx.Client(
            transport=transport,
            timeout=timeout_s,
            verify=str(layout.host(s.hub_ca_file)) if s.hub_ca_file else True,
        ) as http:
            t0 = clock()
            response = http.get(f"{s.hub_url}/v1/health")
            t1 = clock()
    except (httpx.HTTPError, OSError) as exc:  # OSError: the pinned CA file unusable
        return PlatformProbe(up=False, why=type(exc).__name__)
    if not response.is_success:
        return PlatformProbe(up=False, why=f"HTTP {response.status_code}")
    date = response.headers.get("date")
    if date:
        try:
            # HTTP dates are whole seconds, truncated: the hub's clock was half a second on.
            hub_date = parsedate_to_datetime(date) + timedelta(seconds=0.5)
        except (TypeError, ValueError):
            pass
        else:
            return PlatformProbe(True, "", hub_date, t0 + (t1 - t0) / 2)
    return PlatformProbe(up=True)


def device_status_of(
    s: DeviceSettings,
    layout: DeviceLayout,
    *,
    transport: httpx.BaseTransport | None,
    timeout_s: float,
) -> Callable[[], dict[str, Any]]:
    """The signed ``GET /v1/devices/me`` of this device, to be called by the check
    (raises ``ProvisionError`` for an unusable key, ``PlatformError`` for the platform)."""

    def ask() -> dict[str, Any]:
        from edge.provision import load_device_key
        from sync.client import PlatformClient

        key = load_device_key(layout.host(s.key_file))
        with PlatformClient(
            s.hub_url or "",
            key=key,
            device_id=s.device_id,
            ca_file=layout.host(s.hub_ca_file) if s.hub_ca_file else None,
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
        ) as client:
            return client.device_status()

    return ask


def check_platform(s: DeviceSettings, probe: PlatformProbe) -> Check:
    if not s.hub_url:
        return fail(
            "platform",
            "no platform configured (not enrolled)",
            "プラットフォームが設定されていません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    if not probe.up:
        return fail(
            "platform",
            f"platform {s.hub_url} unreachable ({probe.why})",
            "プラットフォームに接続できません",
            "check the network and the platform URL (cases queue sealed meanwhile)",
            "通信環境と接続先を確認する（その間の事案は暗号化して保留されます）",
        )
    return ok("platform", f"platform {s.hub_url} reachable", "プラットフォームに接続できます")


def check_enrollment(
    s: DeviceSettings, probe: PlatformProbe, device_status: Callable[[], dict[str, Any]]
) -> Check:
    """Enrolled, and not revoked: asked of the platform when it answered the probe."""
    fix_en = "kyukyu provision retire --force, then kyukyu provision enroll"
    fix_ja = "廃止処理の後、再登録する（kyukyu provision enroll）"
    if not s.enrolled:
        return fail(
            "enrollment",
            "device not enrolled",
            "端末が登録されていません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    if not probe.up:
        return warn(
            "enrollment",
            "enrollment not checked (platform unreachable)",
            "登録状態を確認できません（プラットフォームに接続できません）",
            "run doctor again when online",
            "接続できるときに再確認する",
        )
    from sync import HttpStatusError, PlatformError

    revoked = fail(
        "enrollment",
        f"device {s.device_id} has been REVOKED by the platform",
        "この端末はプラットフォームで失効しています",
        fix_en,
        fix_ja,
    )
    try:
        me = device_status()
    except ProvisionError as exc:
        why = f"device key unusable ({exc.detail})"
        return fail("enrollment", why, "端末の鍵を使えません", fix_en, fix_ja)
    except HttpStatusError as exc:
        if exc.status == 403 and exc.hub_code == "revoked":
            return revoked
        if exc.status == 401 and exc.hub_code == "stale_request":
            return fail(
                "enrollment",
                "the platform refused the request time (clock)",
                "時刻のずれにより拒否されました",
                "set the clock (NTP)",
                "時刻を合わせる",
            )
        return fail(
            "enrollment",
            f"the platform refused the device ({exc.hub_code or exc.status})",
            "プラットフォームが端末を拒否しました",
            fix_en,
            fix_ja,
        )
    except PlatformError as exc:
        return warn(
            "enrollment",
            f"enrollment not checked ({exc.code})",
            "登録状態を確認できません",
            "run doctor again",
            "再確認する",
        )
    if me.get("revoked"):
        return revoked
    return ok("enrollment", f"enrolled as device {s.device_id}", "端末は登録済みです")


def check_clock(probe: PlatformProbe) -> Check:
    if probe.hub_date is None or probe.local_at_hub_date is None:
        return warn(
            "clock",
            "clock not compared (platform unreachable)",
            "時刻を確認できません",
            "check NTP (timedatectl)",
            "NTP を確認する",
        )
    skew = (probe.local_at_hub_date - probe.hub_date).total_seconds()
    text = f"clock {skew:+.0f} s from the platform"
    if abs(skew) > HUB_MAX_SKEW_S:
        return fail(
            "clock",
            text + f" (the platform refuses beyond {HUB_MAX_SKEW_S:.0f} s)",
            f"時刻が {skew:+.0f} 秒ずれています",
            "set the clock: timedatectl set-ntp true",
            "時刻を合わせる（timedatectl set-ntp true）",
        )
    if abs(skew) > CLOCK_WARN_S:
        return warn(
            "clock",
            text,
            f"時刻が {skew:+.0f} 秒ずれています",
            "enable NTP: timedatectl set-ntp true",
            "NTP を有効にする",
        )
    return ok("clock", text, "時刻は正確です")
