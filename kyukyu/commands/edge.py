"""``kyukyu edge``: the paramedic's touchscreen, in a terminal or (``--web``) a browser kiosk.

A device that cannot start a case (not enrolled, or a setting it cannot read, its key
or its pinned platform key unusable) still opens its screen: 未設定 / 設定に誤り, what
to do, and ``kyukyu doctor``'s findings (``edge.ui.SetupApp``); the process keeps
running so the kiosk shows it, and exits 0 when quit. This is the one command that
does not answer bad settings with one line and exit 2 (``kyukyu.cli``); ``--check``
does, for scripts: it opens nothing and exits 0 when the device could start a case.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.settings import DeviceSettings
    from edge.ui import EdgeApp, Finding, SetupApp, SetupProblem


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "edge",
        help="the paramedic's touchscreen / 救急隊の端末画面",
        description="Run the edge screen in this terminal, or serve it to a browser kiosk (--web). "
        "Without valid settings the screen says so (未設定 / 設定に誤り) and shows the "
        "`kyukyu doctor` findings.",
    )
    p.add_argument(
        "--config", type=Path, help="device settings file (default /etc/kyukyu/edge.env)"
    )
    p.add_argument("--language", choices=("ja", "en"), help="screen language (default: settings)")
    p.add_argument("--theme", choices=("day", "night"), help="screen theme (default: settings)")
    p.add_argument("--web", action="store_true", help="serve the screen with textual-serve")
    p.add_argument("--host", default="127.0.0.1", help="--web: address to listen on")
    p.add_argument("--port", type=int, help="--web: port (default: settings web_port)")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check that the device could start a case: bad settings are one line "
        "on stderr and exit 2 (for scripts); opens no screen",
    )
    p.set_defaults(func=run)


def _child_command(args: argparse.Namespace) -> str:
    cmd = [sys.executable, "-m", "kyukyu", "edge"]
    if args.config is not None:
        cmd += ["--config", str(args.config)]
    if args.language:
        cmd += ["--language", args.language]
    if args.theme:
        cmd += ["--theme", args.theme]
    return shlex.join(cmd)


def _settings(args: argparse.Namespace) -> tuple[DeviceSettings | None, SetupProblem | None]:
    """The device's settings, or why a case cannot start with them (the flow opens
    later, in the app: a key or root it cannot use is said on its screen)."""
    from edge.settings import SettingsError, load_device_settings
    from edge.ui import SetupProblem

    try:
        settings = load_device_settings(args.config, language=args.language, theme=args.theme)
    except SettingsError as exc:
        print(f"kyukyu edge: {exc.one_line()}", file=sys.stderr)
        return None, SetupProblem("invalid", exc.detail or "")
    if not settings.enrolled:
        return settings, SetupProblem("not_enrolled")
    return settings, None


def _diagnose(args: argparse.Namespace, settings: DeviceSettings | None) -> list[Finding]:
    """``kyukyu doctor``'s checks for this settings file (no card read: no case here)."""
    from edge.doctor import DoctorContext, run_doctor

    named = os.environ.get("KYUKYU_EDGE_CONFIG")
    config = args.config or (Path(named) if named else None)  # the file the screen read
    ctx = DoctorContext(settings=settings, config=config, card_test=False)
    return list(run_doctor(ctx).checks)


def run(args: argparse.Namespace) -> int:
    from edge.settings import DeviceSettings, SettingsError, load_device_settings

    if args.check:
        # kyukyu.cli: a SettingsError is one line on stderr and exit 2.
        checked = load_device_settings(args.config, language=args.language, theme=args.theme)
        from edge.flow import open_flow

        open_flow(checked, cards=None).close()  # the key and pinned keys load
        print("kyukyu edge: the device can start a case / 事案を開始できます")
        return 0
    if args.web:
        from textual_serve.server import Server

        import edge.ui

        try:
            port = (
                args.port if args.port is not None else load_device_settings(args.config).web_port
            )
        except SettingsError:
            # The screen served on this port says what is wrong with the settings.
            port = DeviceSettings.model_fields["web_port"].default
        templates = Path(edge.ui.__file__).parent / "web"
        server = Server(
            _child_command(args),
            host=args.host,
            port=port,
            title="マイナ救急",
            templates_path=templates,
        )
        server.serve()
        return 0
    from edge.ui import EdgeApp

    app = build_app(args)
    try:
        app.run()
    finally:
        if isinstance(app, EdgeApp):
            if app.opened_flow is not None:
                app.opened_flow.close()
            if app.open_failed is not None:
                print(f"kyukyu edge: {app.open_failed.line}", file=sys.stderr)
    return 0


def build_app(args: argparse.Namespace) -> EdgeApp | SetupApp:
    """The device's screen, or (no case can start) the screen that says why.

    The flow (device key, JPKI roots, card reader, outbox) opens in the app once its
    standby screen is drawn (cold start); settings it cannot use turn that screen
    into 設定に誤り, as ``SetupApp`` says a settings file that does not load."""
    from functools import partial

    from edge.ui import SetupApp, make_app

    settings, problem = _settings(args)
    if problem is not None or settings is None:
        assert problem is not None
        return SetupApp(
            problem,
            diagnose=partial(_diagnose, args, settings),
            language=args.language or (settings.language if settings else "ja"),
            theme=args.theme or (settings.theme if settings else "day"),
        )
    layout = os.environ.get("KYUKYU_EDGE_LAYOUT_FILE")
    # The flow opens, and its sending and answer stream start, once the standby screen
    # is drawn.
    return make_app(
        settings,
        diagnose=partial(_diagnose, args, settings),
        layout_file=Path(layout) if layout else None,
    )
