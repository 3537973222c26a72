"""``kyukyu hospital``: the hospital's receiving service and its staff accounts.

Settings come from ``hospital.settings.load_hospital_settings`` (flags that were given,
``KYUKYU_HOSPITAL_*`` environment, ``/etc/kyukyu/hospital.env``,
``$CREDENTIALS_DIRECTORY``). Each command reads them before anything else, outside its
error handling: a bad value (``HospitalSettingsError``) reaches ``kyukyu.cli.main``, one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any


def _settings(args: argparse.Namespace) -> Any:
    from hospital.settings import load_hospital_settings

    return load_hospital_settings(
        data_dir=getattr(args, "data_dir", None),
        db_url=getattr(args, "db", None),
        platform_url=getattr(args, "platform", None),
        platform_ca_file=getattr(args, "platform_ca", None),
        listen_host=getattr(args, "host", None),
        listen_port=getattr(args, "port", None),
        retention_seconds=getattr(args, "retention", None),
        fhir_export_dir=getattr(args, "fhir_dir", None),
        fhir_endpoint=getattr(args, "fhir_endpoint", None),
        tls_certfile=getattr(args, "tls_cert", None),
        tls_keyfile=getattr(args, "tls_key", None),
        direct_listen_port=getattr(args, "direct_port", None),
        direct_public_url=getattr(args, "direct_url", None),
    )


def _fail(exc: Exception) -> int:
    code = getattr(exc, "code", type(exc).__name__)
    print(f"error: {code}: {exc}", file=sys.stderr)
    return 1


def _init(args: argparse.Namespace) -> int:
    from errbase import KyukyuError
    from hospital.identity import init_hospital

    settings = _settings(args)
    if not settings.platform_url:
        print("error: --platform URL is required", file=sys.stderr)
        return 2
    token = args.token or getpass.getpass("enrollment token: ")
    try:
        ident = init_hospital(
            settings.data_dir,
            platform_url=settings.platform_url,
            token=token,
            lat=args.lat,
            lon=args.lon,
            ca_file=settings.platform_ca_file,
            expected_hub_key=args.hub_key,
        )
    except KyukyuError as exc:
        return _fail(exc)
    doc = ident.public_doc()
    print(json.dumps(doc, ensure_ascii=False))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from errbase import KyukyuError
    from hospital.main import HospitalRuntime

    settings = _settings(args)
    try:
        runtime = HospitalRuntime(settings)
    except KyukyuError as exc:
        return _fail(exc)
    # The platform's log format (door.logs): JSON lines on stderr (journald) and in
    # --log-file, uvicorn's own lines among them.
    import logging.config

    from door.logs import logging_config

    log_config = logging_config(args.log_file)
    logging.config.dictConfig(log_config)
    scheme = "https" if settings.tls_certfile else "http"
    logging.getLogger("hospital").info(
        "kyukyu hospital %s on %s://%s:%d",
        runtime.identity.hospital_id, scheme, settings.listen_host, settings.listen_port,
        extra={"hospital_id": runtime.identity.hospital_id},
    )  # fmt: skip
    direct = None
    if settings.direct_listen_port is not None:
        if settings.tls_certfile is None or settings.tls_keyfile is None:
            print("error: the direct route needs --tls-cert and --tls-key", file=sys.stderr)
            return 2
        direct = _serve_direct(runtime, settings)
    try:
        uvicorn.run(
            runtime.app,
            host=settings.listen_host,
            port=settings.listen_port,
            log_config=log_config,
            log_level="warning",
            access_log=False,
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
        )
    finally:
        if direct is not None:
            direct.should_exit = True
        runtime.close()
    return 0


def _serve_direct(runtime: Any, settings: Any) -> Any:
    """The direct route's listener (docs/disaster.md) in a thread of its own: HTTPS with
    the hospital's certificate, the same receiving service behind it."""
    import threading

    import uvicorn

    from hospital.direct import create_direct_app, uvicorn_options

    config = uvicorn.Config(
        create_direct_app(runtime.service),
        host=settings.listen_host,
        port=settings.direct_listen_port,
        log_config=None,  # the service's logging is set up already (door.logs)
        log_level="warning",
        access_log=False,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
        **uvicorn_options(),
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="hospital-direct", daemon=True).start()
    print(
        f"direct route on https://{settings.listen_host}:{settings.direct_listen_port}",
        file=sys.stderr,
    )
    return server


def _user_add(args: argparse.Namespace) -> int:
    from errbase import KyukyuError
    from hospital.auth import add_user
    from hospital.identity import load_identity
    from hospital.store import HospitalStore

    settings = _settings(args)
    password = args.password if args.password is not None else getpass.getpass("password: ")
    try:
        ident = load_identity(settings.data_dir, key_file=settings.resolved_key_file())
        store = HospitalStore(settings.resolved_db_url(), ident.keys.storage)
        try:
            secret, uri = add_user(
                store, args.username, args.display_name or args.username, password
            )
        finally:
            store.close()
    except KyukyuError as exc:
        return _fail(exc)
    # The secret is shown once: enter it (or the URI as a QR code) in an authenticator app.
    print(json.dumps({"username": args.username, "totp_secret": secret, "otpauth_uri": uri}))
    return 0


def _store(settings: Any) -> Any:
    from hospital.identity import load_identity
    from hospital.store import HospitalStore

    ident = load_identity(settings.data_dir, key_file=settings.resolved_key_file())
    return HospitalStore(settings.resolved_db_url(), ident.keys.storage)


def _user_admin(args: argparse.Namespace) -> int:
    from errbase import KyukyuError
    from hospital import auth

    settings = _settings(args)
    try:
        store = _store(settings)
    except KyukyuError as exc:
        return _fail(exc)
    try:
        if args.user_command == "list":
            for row in auth.list_users(store):
                print(json.dumps(row, ensure_ascii=False))
        elif args.user_command in ("disable", "enable"):
            auth.set_disabled(store, args.username, args.user_command == "disable")
        elif args.user_command == "reset-totp":
            secret, uri = auth.reset_totp(store, args.username)
            print(
                json.dumps({"username": args.username, "totp_secret": secret, "otpauth_uri": uri})
            )
    except KyukyuError as exc:
        return _fail(exc)
    finally:
        store.close()
    return 0


def _audit(args: argparse.Namespace) -> int:
    """The hospital's audit trail as JSON lines (who viewed or answered which case, when)."""
    from errbase import KyukyuError

    settings = _settings(args)
    try:
        store = _store(settings)
    except KyukyuError as exc:
        return _fail(exc)
    try:
        for row in store.audit_rows(args.action):
            if args.case and row.case_id != args.case:
                continue
            doc = row.model_dump(mode="json")
            print(json.dumps(doc, ensure_ascii=False))
    finally:
        store.close()
    return 0


def _purge(args: argparse.Namespace) -> int:
    from errbase import KyukyuError
    from hospital.identity import load_identity
    from hospital.store import HospitalStore

    settings = _settings(args)
    try:
        ident = load_identity(settings.data_dir, key_file=settings.resolved_key_file())
    except KyukyuError as exc:
        return _fail(exc)
    store = HospitalStore(settings.resolved_db_url(), ident.keys.storage)
    try:
        n = store.purge(settings.retention_seconds, actor="cli")
    finally:
        store.close()
    print(json.dumps({"purged": n, "retention_seconds": settings.retention_seconds}))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Upgrade the hospital database's schema now (serve and every command do it too)."""
    from errbase import KyukyuError
    from hospital.schema import make_engine, migrate

    settings = _settings(args)
    try:
        engine = make_engine(settings.resolved_db_url())
    except OSError as exc:
        print(f"error: cannot open the database file: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        done = migrate(engine, args.revision)
    except KyukyuError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    print(json.dumps(done.as_dict()))
    return 0


def _token(args: argparse.Namespace) -> int:
    """For the platform operator: issue a one-time registration token for one hospital."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync import PlatformError, SignedHttp
    from sync.signing import b64d

    doc = json.loads(Path(args.operator_key).read_text())
    key = Ed25519PrivateKey.from_private_bytes(b64d(doc["private_key"]))
    http = SignedHttp(args.platform, key=key, key_id=doc["key_id"], ca_file=args.platform_ca)
    try:
        out = http.request_json("POST", "/v1/hospital-enrollment-tokens", body={"name": args.name})
    except PlatformError as exc:
        return _fail(exc)
    finally:
        http.close()
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    """Give this install a hybrid (post-quantum) key if it has none and publish it."""
    from errbase import KyukyuError
    from hospital.identity import rotate_hybrid_key

    settings = _settings(args)
    try:
        out = rotate_hybrid_key(
            settings.data_dir,
            platform_url=settings.platform_url,
            key_file=settings.resolved_key_file(),
            ca_file=settings.platform_ca_file,
        )
    except KyukyuError as exc:
        return _fail(exc)
    print(json.dumps({"made": out.made, "key_kinds": list(out.key_kinds)}))
    return 0


def _availability(args: argparse.Namespace) -> int:
    """応需状況: ``set`` sends one change through the platform and records it (as ``cli``
    or ``--by``); ``show`` prints the platform's document and the changes made here."""
    from errbase import KyukyuError
    from hospital.availability import history, parse_change, set_availability
    from hospital.identity import load_identity
    from sync import PlatformError
    from sync.receiver import HospitalClient

    settings = _settings(args)
    try:
        ident = load_identity(
            settings.data_dir, settings.platform_url, key_file=settings.resolved_key_file()
        )
        store = _store(settings)
    except KyukyuError as exc:
        return _fail(exc)
    client = HospitalClient(
        ident.platform_url,
        hospital_id=ident.hospital_id,
        key=ident.keys.signing,
        ca_file=settings.platform_ca_file,
    )
    try:
        if args.availability_command == "set":
            raw = {"code": args.item, "status": args.status, "note": args.note, "count": args.count}
            raw["hours"] = args.hours
            change = parse_change(raw, default_hours=settings.availability_hours)
            doc = set_availability(client, store, [change], by=args.by)
            print(json.dumps(doc, ensure_ascii=False))
        else:
            print(json.dumps({"platform": client.availability()}, ensure_ascii=False))
            for c in history(store):
                print(json.dumps({**c, "at": c["at"].isoformat()}, ensure_ascii=False))
    except (KyukyuError, PlatformError) as exc:
        return _fail(exc)
    finally:
        client.close()
        store.close()
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="default ./hospital-data")
    p.add_argument("--db", default=None, help="database URL (default SQLite in --data-dir)")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    hosp = sub.add_parser("hospital", help="the hospital's receiving service and dashboard")
    hs = hosp.add_subparsers(dest="hospital_command", metavar="SUBCOMMAND")

    p = hs.add_parser("init", help="create keys, register with the platform, pin its key")
    _common(p)
    p.add_argument("--platform", required=True, help="the platform's base URL")
    p.add_argument("--platform-ca", type=Path, default=None, help="PEM CA to pin for TLS")
    p.add_argument("--token", default=None, help="enrollment token (asked for when absent)")
    p.add_argument("--lat", type=float, required=True, help="the hospital's latitude")
    p.add_argument("--lon", type=float, required=True, help="the hospital's longitude")
    p.add_argument("--hub-key", default=None, help="expected platform key (base64url)")
    p.set_defaults(func=_init)

    p = hs.add_parser("serve", help="receive cases and serve the dashboard")
    _common(p)
    p.add_argument(
        "--platform",
        default=None,
        help="override the stored platform URL (default: the stored one)",
    )
    p.add_argument(
        "--platform-ca", type=Path, default=None, help="PEM CA to pin for the platform's TLS"
    )
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 8600)")
    p.add_argument(
        "--retention",
        type=int,
        default=None,
        help="seconds to keep opened cases (default: 7 days)",
    )
    p.add_argument("--log-file", default=None, help="also write the log (JSON lines) to this file")
    p.add_argument("--fhir-dir", type=Path, default=None, help="export each case Bundle here")
    p.add_argument("--fhir-endpoint", default=None, help="POST each case Bundle to this FHIR base")
    p.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    p.add_argument(
        "--direct-port",
        type=int,
        default=None,
        help="serve the direct route (when the platform is out) on this port, over HTTPS",
    )
    p.add_argument(
        "--direct-url",
        default=None,
        help="the direct route's address as devices reach it (registered on the platform)",
    )
    p.set_defaults(func=_serve)

    users = hs.add_parser("user", help="staff accounts")
    us = users.add_subparsers(dest="user_command", metavar="SUBCOMMAND")
    p = us.add_parser("add", help="add a staff account (prints the TOTP secret once)")
    _common(p)
    p.add_argument("username", help="the staff member's sign-in name")
    p.add_argument("--display-name", default=None, help="name shown on the dashboard")
    p.add_argument("--password", default=None, help="(asked for when absent)")
    p.set_defaults(func=_user_add)

    for name, help_text in (
        ("list", "list staff accounts (JSON lines)"),
        ("disable", "disable an account (its sessions end)"),
        ("enable", "enable an account (and lift a lockout)"),
        ("reset-totp", "new TOTP secret for an account (prints it once)"),
    ):
        p = us.add_parser(name, help=help_text)
        _common(p)
        if name != "list":
            p.add_argument("username", help="the staff member's sign-in name")
        p.set_defaults(func=_user_admin)

    p = hs.add_parser("audit", help="the audit trail as JSON lines (no case content)")
    _common(p)
    p.add_argument("--action", default=None, help="e.g. case_viewed, login_failed")
    p.add_argument("--case", default=None, help="one case id")
    p.set_defaults(func=_audit)

    p = hs.add_parser("purge", help="retention: delete opened cases older than --retention now")
    _common(p)
    p.add_argument("--retention", type=int, default=None, help="seconds (default: settings)")
    p.set_defaults(func=_purge)

    p = hs.add_parser(
        "migrate",
        help="upgrade the database schema (prints the revision before and after; serve and"
        " every command upgrade it too, one process at a time)",
    )
    _common(p)
    p.add_argument("--revision", default="head", help="alembic revision to upgrade to")
    p.set_defaults(func=_migrate)

    keys = hs.add_parser("keys", help="the hospital's keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser(
        "rotate",
        help="add the hybrid (post-quantum, X-Wing) key if this install has none and publish"
        " it through the platform (the X25519 key stays: cases sealed before still open);"
        " restart serve afterwards",
    )
    _common(p)
    p.add_argument("--platform", default=None, help="override the stored platform URL")
    p.add_argument(
        "--platform-ca", type=Path, default=None, help="PEM CA to pin for the platform's TLS"
    )
    p.set_defaults(func=_keys_rotate)

    avail = hs.add_parser("availability", help="応需状況: what this hospital can take now")
    avs = avail.add_subparsers(dest="availability_command", required=True)
    p = avs.add_parser("set", help="set one department's or capability's status")
    _common(p)
    p.add_argument("item", help="e.g. neurosurgery, ct, icu (docs/availability.md)")
    p.add_argument(
        "status",
        choices=["available", "consult", "unavailable", "clear"],
        help="可 (available), 要相談 (consult), 不可 (unavailable), or clear to remove it",
    )
    p.add_argument("--note", default=None, help="a short operational note (no patient data)")
    p.add_argument("--hours", type=float, default=None, help="expires after (default 8)")
    p.add_argument("--count", type=int, default=None, help="ICU 空床数 (icu only)")
    p.add_argument("--by", default="cli", help="who, for the audit trail (default cli)")
    p.set_defaults(func=_availability)
    p = avs.add_parser("show", help="the platform's document and the changes made here")
    _common(p)
    p.set_defaults(func=_availability)

    p = hs.add_parser("token", help="(operator) issue a hospital enrollment token")
    p.add_argument("--platform", required=True, help="the platform's base URL")
    p.add_argument(
        "--platform-ca", type=Path, default=None, help="PEM CA to pin for the platform's TLS"
    )
    p.add_argument("--operator-key", required=True, help="operator-key.json")
    p.add_argument("--name", required=True, help="the hospital's name")
    p.set_defaults(func=_token)
