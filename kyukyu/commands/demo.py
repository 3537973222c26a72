"""``kyukyu demo``: the whole system on this machine with a virtual card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole flow with a virtual card / 仮想カードで一連の流れを実行",
    )
    p.add_argument("--workdir", type=Path, help="keep the demo's files here (default: temporary)")
    p.add_argument("--patients", type=int, default=200, help="synthetic patients to seed")
    p.add_argument(
        "--json", action="store_true", help="print the report as one JSON line at the end"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kyukyu._demo import run_demo

    report = run_demo(args.workdir, patients=args.patients)
    ok = bool(report.get("answers")) and report.get("outbox_pending") == 0
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0 if ok else 1
