"""The paramedic's touchscreen (Textual): screens for each stage of ``edge.flow``.

``make_app(settings, flow=...)`` builds the app; without a flow it wires the
device's own from its settings (``edge.flow.open_flow``). The UI holds no
protocol or network code: it renders the flow's view and sends it intents.
A device that cannot start a case (not enrolled, settings wrong) gets ``SetupApp``
instead: it says so, what to do, and ``kyukyu doctor``'s findings.
"""

from __future__ import annotations

from typing import Any

from edge.flow import CaseFlow
from edge.settings import DeviceSettings

from .app import EdgeApp, SetupApp
from .screens.setup import Finding, SetupProblem

__all__ = ["EdgeApp", "Finding", "SetupApp", "SetupProblem", "make_app"]


def make_app(settings: DeviceSettings, *, flow: CaseFlow | None = None, **options: Any) -> EdgeApp:
    """The edge app for ``settings`` (language, theme, idle timeout) around ``flow``."""
    if flow is None:
        from edge.flow import open_flow

        flow = open_flow(settings)
        options.setdefault("start_flow", True)  # once the first screen is drawn
    return EdgeApp(
        flow,
        language=settings.language,
        theme=settings.theme,
        idle_timeout_s=settings.idle_timeout_s,
        **options,
    )
