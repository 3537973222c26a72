"""``kyukyu doctor``: one line per check (OK / WARN / FAIL with the fix); exit 1 on FAIL."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from edge.doctor import DoctorContext, run_doctor
    from edge.provision import DeviceLayout

    ctx = DoctorContext(
        layout=DeviceLayout(Path(args.root)),
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
    env = os.environ.get
    p = sub.add_parser(
        "doctor",
        help="check the device: readers, rules, platform, enrollment, clock, keys, roots, "
        "revocation, disk, outbox / 端末の診断",
        description="One line per check: OK / WARN / FAIL with the fix. Exit 1 when a check "
        "fails, 0 otherwise (warnings included).",
    )
    p.add_argument(
        "--root",
        default=env("KYUKYU_PROVISION_ROOT", "/"),
        help="the device's file tree (default: %(default)s; env KYUKYU_PROVISION_ROOT)",
    )
    p.add_argument("--json", action="store_true", help="print JSON for fleet tools (default: off)")
    p.add_argument(
        "--no-card-test",
        action="store_true",
        help="do not read a card that is on the reader (default: read it)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=float(env("KYUKYU_DOCTOR_TIMEOUT", "5")),
        help="seconds to wait for the platform (default: %(default)s; env KYUKYU_DOCTOR_TIMEOUT)",
    )
    p.add_argument(
        "--disk-warn-mb",
        type=float,
        default=float(env("KYUKYU_DOCTOR_DISK_WARN_MB", "500")),
        help="warn below this much free space, MB (default: %(default)s; "
        "env KYUKYU_DOCTOR_DISK_WARN_MB)",
    )
    p.add_argument(
        "--disk-fail-mb",
        type=float,
        default=float(env("KYUKYU_DOCTOR_DISK_FAIL_MB", "50")),
        help="fail below this much free space, MB (default: %(default)s; "
        "env KYUKYU_DOCTOR_DISK_FAIL_MB)",
    )
    p.set_defaults(func=run)
