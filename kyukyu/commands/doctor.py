"""``kyukyu doctor``: one line per check (OK / WARN / FAIL with the fix); exit 1 on FAIL.

Settings that do not parse stop it first, as in every command: one line on stderr
naming the variable, exit code 2 (with ``--json``, the error as JSON on stdout too).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from edge.doctor import DoctorContext, run_doctor
    from edge.provision import DeviceLayout, read_settings
    from edge.settings import SettingsError

    layout = DeviceLayout(Path(args.root))
    try:
        settings = read_settings(layout)
    except SettingsError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False))
        raise  # kyukyu.cli: one line on stderr, exit code 2
    ctx = DoctorContext(
        layout=layout,
        settings=settings,
        timeout_s=args.timeout,
        card_test=not args.no_card_test,
        disk_warn_bytes=int(args.disk_warn_mb * 2**20),
        disk_fail_bytes=int(args.disk_fail_mb * 2**20),
    )
    report = run_doctor(ctx)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(report.text())
    return report.exit_code


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the device: readers, rules, platform, enrollment, clock, keys, roots, "
        "revocation, disk, outbox / 端末の診断",
        description="One line per check: OK / WARN / FAIL with the fix. Exit 1 when a check "
        "fails, 0 otherwise (warnings included).",
    )
    p.add_argument(
        "--root",
        default="/",
        help="the device's file tree: / on the device, a directory for a staging image",
    )
    p.add_argument("--json", action="store_true", help="print JSON for fleet tools")
    p.add_argument(
        "--no-card-test",
        action="store_true",
        help="do not read a card that is on the reader",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds to wait for the platform",
    )
    p.add_argument(
        "--disk-warn-mb",
        type=float,
        default=500.0,
        help="warn below this much free space, MB",
    )
    p.add_argument(
        "--disk-fail-mb",
        type=float,
        default=50.0,
        help="fail below this much free space, MB",
    )
    p.set_defaults(func=run)
