"""``kyukyu provision``: set a device up (install, trust, enroll) and retire it."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any


def _print_error(exc: Any, as_json: bool) -> int:
    """1 for a refusal; 2 for bad device settings (as ``kyukyu.cli`` answers them)."""
    from errbase import InvalidSettings

    bad_settings = isinstance(exc, InvalidSettings)
    if as_json:
        print(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False))
    elif bad_settings:
        print(f"kyukyu provision: {exc.one_line()}", file=sys.stderr)
    else:
        print(f"error: {exc} / {exc.message_ja}", file=sys.stderr)
    return 2 if bad_settings else 1


def _install(args: argparse.Namespace) -> int:
    from edge.provision import ProvisionError, install

    try:
        report = install(
            Path(args.root),
            roles=args.role or ["edge"],
            kyukyu_bin=args.kyukyu_bin,
            hardware=Path(args.hardware_dir) if args.hardware_dir else None,
            enable=not args.no_enable,
        )
    except ProvisionError as exc:
        return _print_error(exc, args.json)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict()}, ensure_ascii=False))
    elif report.changed:
        for path in report.changed:
            print(f"installed {path}")
    else:
        print(f"nothing to change under {args.root} / 変更はありません")
    return 0


def _trust_install(args: argparse.Namespace) -> int:
    from edge.provision import DeviceLayout, ProvisionError, install_roots

    if not args.files and not args.bundled:
        print("error: give root certificate files, or --bundled", file=sys.stderr)
        return 2
    try:
        report = install_roots(
            DeviceLayout(Path(args.root)),
            args.files,
            allow_test=args.test_ca,
            bundled=args.bundled,
        )
    except ProvisionError as exc:
        return _print_error(exc, args.json)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for o in report.outcomes:
            fp = (o.sha256 or "")[:16]
            label = o.name or "-"
            if o.status == "refused":
                print(f"REFUSED {o.source} {fp}: {o.reason} / 登録できません", file=sys.stderr)
            elif o.status == "expired":
                print(f"skipped {label} {fp}: {o.reason} / 期限切れのため登録しません")
            else:
                kind = " (TEST root)" if o.test else ""
                print(f"{o.status} {label}{kind} {fp} / 登録しました")
        if not report.ok:
            print("nothing installed / 何も登録していません", file=sys.stderr)
        elif report.test_mode:
            print("device is in TEST mode: test roots are accepted / テストモード")
    return 0 if report.ok else 1


def _enroll(args: argparse.Namespace) -> int:
    from edge.provision import DeviceLayout, ProvisionError, enroll
    from edge.settings import SettingsError

    if not args.hub or not args.token:
        print(
            "error: --hub and --token are required "
            "(or KYUKYU_PROVISION_HUB, KYUKYU_PROVISION_TOKEN)",
            file=sys.stderr,
        )
        return 2
    try:
        report = enroll(
            DeviceLayout(Path(args.root)),
            hub_url=args.hub,
            token=args.token,
            name=args.name,
            ca_file=Path(args.ca) if args.ca else None,
            expect_hub_key=args.expect_hub_key,
            force=args.force,
        )
    except (ProvisionError, SettingsError) as exc:
        return _print_error(exc, args.json)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict()}, ensure_ascii=False))
    else:
        print(f"enrolled as device {report.device_id} with {report.hub_url} / 登録しました")
        print(
            f"pinned hub key {report.hub_key_id}; {report.hospitals} hospitals in the directory; "
            f"revocation snapshot version {report.revocation_version}"
        )
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from edge.provision import DeviceLayout, ProvisionError, refresh
    from edge.settings import SettingsError

    try:
        report = refresh(DeviceLayout(Path(args.root)))
    except (ProvisionError, SettingsError) as exc:
        return _print_error(exc, args.json)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict()}, ensure_ascii=False))
    else:
        print(
            f"revocation snapshot #{report.revocation_version} (was "
            f"#{report.previous_version}); {report.hospitals} hospitals / 更新しました"
        )
    return 0


def _retire(args: argparse.Namespace) -> int:
    from edge.provision import DeviceLayout, ProvisionError, retire
    from edge.settings import SettingsError

    try:
        report = retire(
            DeviceLayout(Path(args.root)),
            staff_key_file=Path(args.staff_key) if args.staff_key else None,
            force=args.force,
        )
    except (ProvisionError, SettingsError) as exc:
        return _print_error(exc, args.json)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict()}, ensure_ascii=False))
    else:
        if report.revoked_on_platform:
            print(f"device {report.device_id} revoked on the platform / 失効しました")
        if report.warning:
            print(f"WARNING: {report.warning} / プラットフォームで失効させてください")
        if report.unsent_discarded:
            print(f"discarded {report.unsent_discarded} unsent sealed case(s) (--force)")
        print(f"wiped {len(report.wiped)} files (keys, outbox, state) / 消去しました")
    return 0


def _root_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        default="/",
        help="the device's file tree: / on the device, a directory for a staging image",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    prov = sub.add_parser(
        "provision", help="set a device up and retire it (technicians) / 端末の設定と廃止"
    )
    ps = prov.add_subparsers(dest="provision_command", metavar="SUBCOMMAND")

    p = ps.add_parser(
        "install",
        help="install udev rules, module blacklist, systemd units and service users",
    )
    _root_option(p)
    p.add_argument(
        "--role",
        action="append",
        choices=["edge", "hub", "hospital"],
        help="what this machine runs; repeat for several (default: edge)",
    )
    p.add_argument(
        "--kyukyu-bin",
        default=None,
        help="absolute path of the kyukyu executable the units run "
        "(default: this environment's kyukyu)",
    )
    p.add_argument(
        "--hardware-dir",
        default=None,
        help="a folder of hardware files to install instead of the packaged ones",
    )
    p.add_argument(
        "--no-enable", action="store_true", help="install the units without enabling them"
    )
    p.set_defaults(func=_install)

    trust = ps.add_parser("trust", help="JPKI trust anchors / JPKIルート証明書")
    ts = trust.add_subparsers(dest="trust_command", metavar="SUBCOMMAND")
    p = ts.add_parser(
        "install",
        help="install J-LIS root certificates that match the pinned fingerprints",
    )
    _root_option(p)
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="PEM or DER certificate files (or --bundled)"
    )
    p.add_argument(
        "--bundled",
        action="store_true",
        help="install the J-LIS roots shipped with kyukyu (each checked against its pinned "
        "fingerprint; expired ones are skipped)",
    )
    p.add_argument(
        "--test-ca",
        action="store_true",
        help="also accept an unpinned self-signed CA as a test root and put the device in "
        "test mode (development and demo only)",
    )
    p.set_defaults(func=_trust_install)

    p = ps.add_parser(
        "enroll",
        help="create the device key, enroll with the platform, pin its key and CA, "
        "fetch the hospital directory and revocation snapshot",
    )
    _root_option(p)
    p.add_argument(
        "--hub",
        default=None,
        help="the platform's base URL, https://",
    )
    p.add_argument(
        "--token",
        default=None,
        help="one-time enrollment token from the platform (write --token=T)",
    )
    p.add_argument(
        "--ca",
        default=None,
        help="PEM CA the platform's TLS certificate chains to; pinned (default: none, "
        "allowed only for http on this machine)",
    )
    p.add_argument(
        "--name",
        default=socket.gethostname(),
        help="the device's name on the platform (default: the host name, %(default)s)",
    )
    p.add_argument(
        "--expect-hub-key",
        default=None,
        metavar="KEY",
        help="the platform signing key given out of band (base64url); enrollment stops if "
        "the platform presents another. Write --expect-hub-key=KEY: a base64url key may "
        "start with '-'",
    )
    p.add_argument("--force", action="store_true", help="enroll again over an existing enrollment")
    p.set_defaults(func=_enroll)

    p = ps.add_parser(
        "refresh",
        help="fetch the hub-signed revocation snapshot and hospital directory again "
        "(kyukyu-refresh.timer runs it hourly)",
    )
    _root_option(p)
    p.set_defaults(func=_refresh)

    p = ps.add_parser(
        "retire",
        help="revoke the device on the platform and wipe its keys, outbox and state",
    )
    _root_option(p)
    p.add_argument(
        "--staff-key",
        default=None,
        help="a technician's or operator's key file (`kyukyu hub init` format) that signs "
        "the revocation",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="wipe even with unsent sealed cases or when the platform cannot be reached",
    )
    p.set_defaults(func=_retire)
