"""``kyukyu edge``: the paramedic's touchscreen, in a terminal or (``--web``) a browser kiosk."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "edge",
        help="the paramedic's touchscreen / 救急隊の端末画面",
        description="Run the edge screen in this terminal, or serve it to a browser kiosk (--web).",
    )
    p.add_argument(
        "--config", type=Path, help="device settings file (default /etc/kyukyu/edge.env)"
    )
    p.add_argument("--language", choices=("ja", "en"), help="screen language (default: settings)")
    p.add_argument("--theme", choices=("day", "night"), help="screen theme (default: settings)")
    p.add_argument("--web", action="store_true", help="serve the screen with textual-serve")
    p.add_argument("--host", default="127.0.0.1", help="--web: address to listen on")
    p.add_argument("--port", type=int, help="--web: port (default: settings web_port)")
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


def run(args: argparse.Namespace) -> int:
    from edge.settings import load_device_settings

    # A SettingsError (a bad value, not enrolled, no key) reaches kyukyu.cli: one line, 2.
    settings = load_device_settings(args.config, language=args.language, theme=args.theme)
    if args.web:
        from textual_serve.server import Server

        import edge.ui

        templates = Path(edge.ui.__file__).parent / "web"
        server = Server(
            _child_command(args),
            host=args.host,
            port=args.port if args.port is not None else settings.web_port,
            title="マイナ救急",
            templates_path=templates,
        )
        server.serve()
        return 0
    from edge.ui import make_app

    layout = os.environ.get("KYUKYU_EDGE_LAYOUT_FILE")
    app = make_app(settings, layout_file=Path(layout) if layout else None)
    try:
        app.run()
    finally:
        app.flow.close()
    return 0
