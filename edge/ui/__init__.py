"""The paramedic's touchscreen (Textual): screens for each stage of ``edge.flow``.

``make_app(settings, flow=...)`` builds the app; without a flow the app opens the
device's own from its settings (``edge.flow.open_flow``) once its standby screen is
drawn (起動中… until then). The UI holds no protocol or network code: it renders
the flow's view and sends it intents. A device that cannot start a case (not
enrolled, settings wrong) gets ``SetupApp`` instead, or (settings the flow cannot
use) its ``SetupScreen``: it says so, what to do, and ``kyukyu doctor``'s findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .app import EdgeApp, FlowNotOpen, OpenFailed, SetupApp
from .screens.setup import Finding, SetupProblem

if TYPE_CHECKING:
    from edge.flow import CaseFlow
    from edge.settings import DeviceSettings

__all__ = [
    "EdgeApp",
    "Finding",
    "FlowNotOpen",
    "OpenFailed",
    "SetupApp",
    "SetupProblem",
    "make_app",
    "opener",
]


def opener(settings: DeviceSettings) -> Callable[[], CaseFlow]:
    """Opens the device's flow from ``settings``; settings it cannot use are ``OpenFailed``."""

    def open_device_flow() -> CaseFlow:
        from edge.flow import open_flow
        from edge.settings import SettingsError

        try:
            return open_flow(settings)
        except SettingsError as exc:
            raise OpenFailed(SetupProblem("invalid", exc.detail or ""), exc.one_line()) from exc

    return open_device_flow


def make_app(
    settings: DeviceSettings,
    *,
    flow: CaseFlow | None = None,
    diagnose: Callable[[], Sequence[Finding]] | None = None,
    **options: Any,
) -> EdgeApp:
    """The edge app for ``settings`` (language, theme, idle timeout) around ``flow``,
    or (none given) the device's own, opened once the first screen is drawn."""
    if flow is None:
        options["opener"] = opener(settings)
        options.setdefault("start_flow", True)  # once the first screen is drawn
    return EdgeApp(
        flow,
        language=settings.language,
        theme=settings.theme,
        idle_timeout_s=settings.idle_timeout_s,
        diagnose=diagnose,
        **options,
    )
