"""``kyukyu demo``: the whole system on this machine with virtual cards."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole system on this machine with virtual cards / 仮想カードでシステム全体を実行",
        description=(
            "Start the platform (SQLite, synthetic patients), two hospital services with "
            "their dashboards and a virtual card reader, then the paramedic screen in this "
            "terminal (or --web for a browser). --headless runs one scripted case instead. "
            "Sub-commands: `kyukyu demo tap` (next card), `kyukyu demo totp SECRET`."
        ),
    )
    p.add_argument(
        "action",
        nargs="*",
        metavar="tap | totp SECRET",
        help="tap: put the next card on the running demo's reader (with --workdir); "
        "totp SECRET: print the current sign-in code for a dashboard account",
    )
    p.add_argument(
        "--workdir", type=Path, help="keep the demo's files here (default: a temporary directory)"
    )
    p.add_argument(
        "--patients", type=int, default=200, help="synthetic patients to seed (default: 200)"
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="run one scripted case end to end and exit (CI); default: interactive",
    )
    p.add_argument(
        "--wait-for-staff",
        type=float,
        metavar="S",
        help="--headless: wait up to S seconds for a person to accept on a dashboard "
        "(default: the demo's own staff answer)",
    )
    p.add_argument(
        "--json", action="store_true", help="--headless: print the report as one JSON line"
    )
    p.add_argument("--web", action="store_true", help="serve the paramedic screen to a browser")
    p.add_argument("--host", default="127.0.0.1", help="--web: address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="--web: port (default: the device's web_port, 8765)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kyukyu import _demo
    from kyukyu.testing import totp_now

    if args.action:
        verb, rest = args.action[0], args.action[1:]
        if verb == "totp" and len(rest) == 1:
            print(totp_now(rest[0]))
            return 0
        if verb == "tap" and not rest:
            if args.workdir is None or not args.workdir.is_dir():
                print("error: kyukyu demo tap needs the running demo's --workdir", file=sys.stderr)
                return 2
            _demo.request_tap(args.workdir)
            return 0
        print(f"error: unknown demo action {' '.join(args.action)!r}", file=sys.stderr)
        return 2
    if args.headless:
        report = _demo.run_demo(
            args.workdir,
            patients=args.patients,
            wait_for_staff=args.wait_for_staff,
            say=lambda line: print(line, flush=True),
        )
        ok = bool(report.get("destination")) and report.get("outbox_pending") == 0
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        return 0 if ok else 1
    return _demo.run_interactive(
        args.workdir,
        patients=args.patients,
        web=args.web,
        host=args.host,
        port=args.port,
        say=lambda line: print(line, flush=True),
    )
