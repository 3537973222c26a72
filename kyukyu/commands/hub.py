"""``kyukyu hub``: the platform server (serve, migrate, init, revoke, audit, seed, purge, CRLs,
regions; refused-cases lists the cases hospitals reported refusing, hospitals lists the hospitals
with their key kinds, through the API).

Settings come from ``hub_server.core.config.load_hub_settings`` (``KYUKYU_HUB_*``
environment, ``/etc/kyukyu/hub.env``, ``$CREDENTIALS_DIRECTORY``); an option given on
the command line wins, an option left out changes nothing. Bad settings
(``HubSettingsError``, ``InsecureSettings``) reach ``kyukyu.cli.main``: one line on
stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from errbase.paths import HUB_DEV_DB_URL, HUB_KEY_CREDENTIAL

DEFAULT_DB = HUB_DEV_DB_URL


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from hub_server.core.config import load_hub_settings

    return load_hub_settings(
        db_url=getattr(args, "db", None),
        environment=getattr(args, "env", None),
        hub_key_path=getattr(args, "key", None) if getattr(args, "trust", False) else None,
        trust_roots_dir=getattr(args, "trust_roots", None),
        allow_test_roots=True if getattr(args, "allow_test_roots", False) else None,
        **extra,
    )


def _db(args: argparse.Namespace) -> str:
    """The database URL: ``--db``, else the settings (``KYUKYU_HUB_DB``, file, default)."""
    return str(_settings(args).db_url)


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from hub_server.main import create_app

    settings = _settings(
        args,
        run_migrations=False if args.no_migrate else None,
        case_retention_seconds=args.retention,
        pool_size=args.pool_size,
        request_threads=args.threads,
        listen_host=args.host,
        listen_port=args.port,
        metrics_port=args.metrics_port,
        forwarded_allow_ips=args.forwarded_allow_ips,
        proxy_protocol=True if args.proxy_protocol else None,
    ).check()
    if not settings.is_postgres:
        # SQLite: request threads hold the write lock while they wait for the GIL; a
        # shorter switch interval (default 5 ms) keeps those waits short. On PostgreSQL
        # only the group-commit writer holds row locks, and the default costs less CPU.
        sys.setswitchinterval(0.0005)
    from hub_server.core.capacity import raise_open_file_limit, tune_gc

    tune_gc()

    # One logging set-up for every process of the hub: JSON lines on stderr (journald)
    # and in --log-file. uvicorn applies it (log_config) in this process and in each
    # worker it starts, so the workers' lines reach the same places.
    import logging.config

    from door.logs import logging_config

    log_config = logging_config(args.log_file)
    logging.config.dictConfig(log_config)
    before, after = raise_open_file_limit()  # one descriptor per stream (workers inherit)
    if after != before:
        logging.getLogger("hub_server").info(
            "open files limit raised from %d to %d", before, after,
            extra={"open_files_limit": after},
        )  # fmt: skip
    else:
        logging.getLogger("hub_server").info(
            "open files limit %d", after, extra={"open_files_limit": after}
        )
    if args.workers > 1:
        return _serve_workers(args, settings, log_config)
    from hub_server.core.server import uvicorn_options

    app = create_app(settings)
    if settings.metrics_port is not None:
        from hub_server.core.metrics import serve_metrics

        serve_metrics(
            settings.metrics_port,
            db_url=settings.db_url,
            registry=app.state.hub.metrics.registry,
            trust_roots_dir=settings.trust_roots_dir,
            allow_test_roots=settings.allow_test_roots,
        )
    uvicorn.run(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        log_config=log_config,
        access_log=False,  # the hub's own access log (hub_server.access) replaces uvicorn's
        timeout_graceful_shutdown=2,
        **uvicorn_options(settings),  # header, timeout and connection limits (issue 10)
    )
    return 0


def _serve_workers(args: argparse.Namespace, settings: Any, log_config: dict[str, Any]) -> int:
    """Several uvicorn worker processes; only with PostgreSQL (LISTEN/NOTIFY joins them)."""
    import os
    import tempfile

    import uvicorn

    from hub_server.core.db import migrate
    from hub_server.core.security import HubKey
    from hub_server.core.server import uvicorn_options

    if not settings.is_postgres:
        print("--workers needs PostgreSQL (SQLite has no cross-process push)", file=sys.stderr)
        return 2
    settings.check()
    migrate(settings.db_url)
    key_path = settings.hub_key_path or Path(tempfile.mkdtemp()) / HUB_KEY_CREDENTIAL
    HubKey.load_or_create(key_path)  # every worker signs with the same key
    # Every worker reads the same settings from the environment (app_from_env).
    from hub_server.core.config import env_name

    env = {}
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, dict):
            continue
        env[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    env[env_name("hub_key_path")] = str(key_path)
    if settings.metrics_port is not None:
        # The workers count in shared files; this process serves their sum.
        from hub_server.core.metrics import serve_metrics

        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kyukyu-hub-metrics-")
        os.environ.update(env)
        serve_metrics(
            settings.metrics_port,
            db_url=settings.db_url,
            trust_roots_dir=settings.trust_roots_dir,
            allow_test_roots=settings.allow_test_roots,
        )
    os.environ.update(env)
    uvicorn.run(
        "hub_server.main:app_from_env",
        factory=True,
        host=settings.listen_host,
        port=settings.listen_port,
        workers=args.workers,
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=2,
        **uvicorn_options(settings),
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from hub_server.core.db import migrate

    migrate(_db(args), args.revision)
    print(f"database at revision {args.revision}")
    return 0


def _init(args: argparse.Namespace) -> int:
    """Create the first operator and write its private key to a file (mode 600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlmodel import Session

    from hub_server import crud
    from hub_server.core.audit import append_audit
    from hub_server.core.db import make_engine, migrate, utcnow
    from hub_server.core.security import HubKey
    from sync.signing import b64e, public_key_to_b64

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"{out} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    db = _db(args)
    migrate(db)
    if args.key:
        HubKey.load_or_create(Path(args.key))
    key = Ed25519PrivateKey.generate()
    engine = make_engine(db, pool_size=1)
    with Session(engine) as session:
        op = crud.create_operator(
            session,
            name=args.name,
            role="operator",
            public_key=public_key_to_b64(key.public_key()),
            now=utcnow(),
        )
        append_audit(
            session,
            actor="cli",
            action="operator_created",
            subject=f"operator:{op.id}",
            details={"role": "operator", "via": "kyukyu hub init"},
            now=utcnow(),
        )
        session.commit()
        key_id = f"operator:{op.id}"
    engine.dispose()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"key_id": key_id, "private_key": b64e(raw)}) + "\n")
    out.chmod(0o600)
    print(f"operator {key_id}: key written to {out}")
    return 0


def _hub_public_key(args: argparse.Namespace) -> Any:
    """The hub's public key for checkpoint signatures: ``--hub-key`` (the hub's PEM key
    file, or a file holding the base64url public key), else the settings' hub key."""
    from hub_server.core.security import HubKey
    from sync.signing import public_key_from_b64

    path = args.hub_key or _settings(args).hub_key_path
    if path is None:
        raise SystemExit("kyukyu hub: --checkpoint needs --hub-key (or KYUKYU_HUB_KEY)")
    text = Path(path).read_text().strip()
    if text.startswith("-----BEGIN"):
        return HubKey.load(Path(path)).public_key
    return public_key_from_b64(text)


def _audit_verify(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from hub_server.core.audit import (
        chain_pending,
        read_checkpoints,
        verify_against_checkpoints,
        verify_chain,
    )
    from hub_server.core.db import make_engine

    checkpoints = []
    key = None
    if args.checkpoint:
        key = _hub_public_key(args)
        for path in args.checkpoint:
            try:
                checkpoints.extend(read_checkpoints(Path(path).read_text()))
            except (OSError, ValueError) as exc:
                print(f"kyukyu hub: {path}: cannot read checkpoints ({exc})", file=sys.stderr)
                return 2
    engine = make_engine(_db(args), pool_size=1)
    with engine.begin() as conn:  # rows committed with their action but not linked yet
        chain_pending(conn)
    with Session(engine) as session:
        if args.checkpoint:
            verdict = verify_against_checkpoints(session, checkpoints, key)
        else:
            verdict = verify_chain(session)
    engine.dispose()
    if verdict.ok:
        held = f", {len(checkpoints)} checkpoints hold" if args.checkpoint else ""
        print(f"audit trail intact: {verdict.rows} rows{held}")
        for note in verdict.notes or _restores(args):
            print(note)
        return 0
    where = f"at row {verdict.bad_seq}: " if verdict.bad_seq is not None else ""
    print(
        f"AUDIT TRAIL TAMPERED {where}{verdict.reason} ({verdict.rows} rows verified before it)",
        file=sys.stderr,
    )
    return 1


def _restores(args: argparse.Namespace) -> list[str]:
    """The restores the chain records (signatures checked only with --checkpoint)."""
    from hub_server.core.audit import markers_in_chain
    from hub_server.core.db import make_engine

    engine = make_engine(_db(args), pool_size=1)
    with engine.connect() as conn:
        found = markers_in_chain(conn)
    engine.dispose()
    return [
        f"restored to row {m['restore']['seq']} at {m['restore']['at']} "
        "(signature checked with --checkpoint and --hub-key)"
        for _, m in found
        if isinstance(m.get("restore"), dict)
    ]


def _backup(args: argparse.Namespace) -> int:
    """pg_dump -Fc (PostgreSQL) or SQLite's online backup API, while the hub runs."""
    from hub_server.services.backups import BackupFailed, backup_database

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"kyukyu hub: {out} exists (use --force to overwrite)", file=sys.stderr)
        return 1
    try:
        digest = backup_database(_db(args), out)
    except BackupFailed as exc:
        print(f"kyukyu hub: {exc} / {exc.message_ja}", file=sys.stderr)
        return 1
    print(f"backup written to {out} (sha256 {digest})")
    return 0


def _restore(args: argparse.Namespace) -> int:
    """Replace the database with a backup, then sign a restore marker into the audit
    trail and the checkpoint stream (the hub must be stopped meanwhile)."""
    from hub_server.core.security import HubKey
    from hub_server.services.backups import BackupFailed, restore_database

    settings = _settings(args)
    key_path = args.hub_key or settings.hub_key_path
    if key_path is None:
        print("kyukyu hub: restore needs --hub-key (or KYUKYU_HUB_KEY)", file=sys.stderr)
        return 2
    backup = Path(args.backup)
    if not backup.is_file():
        print(f"kyukyu hub: no backup at {backup}", file=sys.stderr)
        return 2
    try:
        marker = restore_database(
            str(settings.db_url),
            backup,
            HubKey.load(Path(key_path)),
            event_gap=args.event_gap,
            checkpoint_file=args.checkpoint_out or settings.audit_checkpoint_file,
        )
    except BackupFailed as exc:
        print(f"kyukyu hub: {exc} / {exc.message_ja}", file=sys.stderr)
        return 1
    line = json.dumps(marker, separators=(",", ":"), sort_keys=True)
    body = marker["restore"]
    print(f"restored to audit row {body['seq']} at {body['at']}; marker: {line}")
    return 0


def _audit_checkpoint(args: argparse.Namespace) -> int:
    """Sign the chain head with the hub key; print it and append it to ``--out``."""
    from hub_server.core.audit import chain_pending, signed_checkpoint
    from hub_server.core.db import make_engine, utcnow
    from hub_server.core.security import HubKey

    path = args.hub_key or _settings(args).hub_key_path
    if path is None:
        print("kyukyu hub: needs --hub-key (or KYUKYU_HUB_KEY)", file=sys.stderr)
        return 2
    hub_key = HubKey.load(Path(path))
    engine = make_engine(_db(args), pool_size=1)
    with engine.begin() as conn:
        chain_pending(conn)
        doc = signed_checkpoint(conn, hub_key, now=utcnow())
    engine.dispose()
    line = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    print(line)
    return 0


def _seed(args: argparse.Namespace) -> int:
    from kyukyu.testing import seed_with_cards

    report = seed_with_cards(
        args.medical_db or _settings(args).medical_url,
        patients=args.patients,
        rng_seed=args.seed,
        cards=args.cards,
        cards_dir=Path(args.cards_dir) if args.cards_dir else None,
        ca_dir=Path(args.ca_dir) if args.ca_dir else None,
    )
    print(
        f"seeded {report.patients} patients in {report.seconds:.1f} s"
        + (f", {len(report.cards)} cards in {args.cards_dir}" if report.cards else "")
    )
    return 0


def _purge(args: argparse.Namespace) -> int:
    from hub_server.main import build_state, purge_once

    state = build_state(_settings(args, case_retention_seconds=args.retention))
    n = purge_once(state)
    state.engine.dispose()
    print(f"purged {n} delivered sealed cases")
    return 0


def _ingest_crl(args: argparse.Namespace) -> int:
    from hub_server.core.errors import HubError
    from hub_server.main import build_state
    from hub_server.services.crl_ingestion import ingest

    state = build_state(_settings(args))
    try:
        with state.session() as session:
            result = ingest(state, session, crl_der=Path(args.crl).read_bytes(), actor="cli")
    except HubError as exc:
        print(f"{exc.code}: {exc.message_en}", file=sys.stderr)
        return 1
    finally:
        state.engine.dispose()
    print(f"revocation version {result.version}: {result.revoked_count} revoked serials")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    """Revoke a device, hospital, operator or technician (audited as ``cli``); running hub
    processes end its open streams (PostgreSQL: at once; SQLite: within the poll)."""
    from sqlmodel import Session

    from hub_server.core.db import make_engine, utcnow
    from hub_server.core.errors import HubError
    from hub_server.services.identity_revocation import revoke_identity

    engine = make_engine(_db(args), pool_size=1)
    try:
        with Session(engine, expire_on_commit=False) as session:
            key_id = revoke_identity(
                session,
                kind=args.kind,
                ident=args.id.split(":", 1)[-1],
                actor="cli",
                now=utcnow(),
                reason=args.reason,
            )
    except HubError as exc:
        print(f"{exc.code}: {exc.message_en}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"revoked {args.kind} {key_id}")
    return 0


def _region(args: argparse.Namespace) -> int:
    """Regions (応需状況, docs/availability.md): ``set`` creates or changes one (audited as
    ``cli``), ``list`` prints every region; JSON lines."""
    from pydantic import ValidationError
    from sqlmodel import Session

    from hub_server.core.db import make_engine
    from hub_server.core.errors import HubError
    from hub_server.crud import availability as crud
    from hub_server.schemas import RegionSet
    from hub_server.services.availability import set_region

    if args.region_command == "set":
        try:
            body = RegionSet(
                name=args.name, neighbours=args.neighbour or [], direct_route=args.direct_route
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            print(f"invalid_region: {where}: {first['msg']}", file=sys.stderr)
            return 2
    engine = make_engine(_db(args), pool_size=1)
    try:
        with Session(engine, expire_on_commit=False) as session:
            if args.region_command == "set":
                region = set_region(session, code=args.code, body=body, actor="cli")
                print(json.dumps(region.model_dump(), ensure_ascii=False))
            else:
                for row, neighbours in crud.regions(session):
                    doc = {
                        "code": row.code,
                        "name": row.name,
                        "neighbours": neighbours,
                        "direct_route": row.direct_route,
                    }
                    print(json.dumps(doc, ensure_ascii=False))
    except HubError as exc:
        print(f"{exc.code}: {exc.message_en}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _incidents(args: argparse.Namespace) -> int:
    """多数傷病者 (docs/mass-casualty.md) for the operator: every incident and its tally per
    hospital and category, newest first, JSON lines (no tags, no patient data)."""
    from sqlmodel import Session

    from hub_server.core.db import make_engine
    from hub_server.services.incidents import incidents_of_operator

    engine = make_engine(_db(args), pool_size=1)
    try:
        with Session(engine) as session:
            for doc in incidents_of_operator(session, limit=args.limit):
                print(json.dumps(doc, ensure_ascii=False))
    finally:
        engine.dispose()
    return 0


def _operator_get(args: argparse.Namespace, path: str, params: dict[str, Any]) -> Any:
    """GET ``path`` on the platform signed with the operator's key file; the JSON answer,
    or an exit code (2: the key file, 1: the platform's refusal, printed on stderr)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync import PlatformError, SignedHttp
    from sync.signing import b64d

    try:
        doc = json.loads(Path(args.operator_key).read_text())
        key = Ed25519PrivateKey.from_private_bytes(b64d(doc["private_key"]))
        key_id = str(doc["key_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(
            f"kyukyu hub: cannot read the operator key {args.operator_key} ({type(exc).__name__})",
            file=sys.stderr,
        )
        return 2
    http = SignedHttp(args.platform, key=key, key_id=key_id, ca_file=args.platform_ca)
    try:
        return http.request_json("GET", path, params=params)
    except PlatformError as exc:
        print(f"{exc.code}: {exc.message_en} ({exc})", file=sys.stderr)
        return 1
    finally:
        http.close()


def _refused_cases(args: argparse.Namespace) -> int:
    """For the platform operator: the cases hospitals reported refusing, as JSON lines."""
    params: dict[str, Any] = {"after": args.after, "limit": args.limit}
    if args.hospital:
        params["hospital_id"] = args.hospital
    page = _operator_get(args, "/v1/refused-case-reports", params)
    if isinstance(page, int):
        return page
    for report in page["reports"]:
        print(json.dumps(report, ensure_ascii=False, sort_keys=True))
    return 0


def _hospitals(args: argparse.Namespace) -> int:
    """For the platform operator: every hospital and its key kinds as JSON lines;
    ``--without-pq``: those still without a hybrid (post-quantum) key."""
    params = {"without_pq": "true"} if args.without_pq else {}
    page = _operator_get(args, "/v1/hospitals", params)
    if isinstance(page, int):
        return page
    for h in page["hospitals"]:
        print(json.dumps({**h, "require_pq": page["require_pq"]}, ensure_ascii=False))
    return 0


def _common(p: argparse.ArgumentParser, *, trust: bool = False) -> None:
    p.add_argument(
        "--db", default=None, help=f"SQLAlchemy URL (default: $KYUKYU_HUB_DB, else {DEFAULT_DB})"
    )
    p.set_defaults(trust=trust)
    if trust:
        p.add_argument(
            "--env",
            choices=["dev", "test", "prod"],
            default=None,
            help="deployment environment (default: dev; prod refuses test roots and defaults)",
        )
        p.add_argument("--key", type=Path, default=None, help="hub Ed25519 key (PEM; created)")
        p.add_argument("--trust-roots", type=Path, default=None, help="JPKI roots directory")
        p.add_argument("--allow-test-roots", action="store_true", help="accept test CA roots")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    hub = sub.add_parser("hub", help="the platform server")
    hs = hub.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")

    p = hs.add_parser("serve", help="run the hub (migrates the database first)")
    _common(p, trust=True)
    p.add_argument("--host", default=None, help="default: $KYUKYU_HUB_LISTEN_HOST, 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default: $KYUKYU_HUB_LISTEN_PORT, 8600")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on 127.0.0.1:PORT (default: $KYUKYU_HUB_METRICS_PORT, off)",
    )
    p.add_argument(
        "--no-migrate", action="store_true", help="do not upgrade the database schema first"
    )
    p.add_argument(
        "--retention",
        type=int,
        default=None,
        help="seconds to keep delivered cases (default: 86400)",
    )
    p.add_argument(
        "--pool-size",
        type=int,
        default=None,
        help="database connections per process (default: the hub's setting)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="request threads per process (default 40; fewer contend less for the GIL)",
    )
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers (PostgreSQL only)")
    p.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="ADDRESSES",
        help="proxies (IPs, networks, '*') whose X-Forwarded-For and PROXY header name the "
        "client the limits count (default: $KYUKYU_HUB_FORWARDED_ALLOW_IPS, none)",
    )
    p.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="connections from those proxies begin with a PROXY protocol v2 header "
        "(HAProxy send-proxy-v2); its source is the client of the connection caps",
    )
    p.add_argument("--log-file", default=None, help="also write the log to this file")
    p.set_defaults(func=_serve)

    p = hs.add_parser("migrate", help="upgrade the database schema")
    _common(p)
    p.add_argument("--revision", default="head", help="alembic revision to upgrade to")
    p.set_defaults(func=_migrate)

    p = hs.add_parser("init", help="create the first operator and write its key to a file")
    _common(p)
    p.add_argument(
        "--out", default="operator-key.json", help="where to write the operator's key (0600)"
    )
    p.add_argument("--name", default="operator", help="the first operator's name")
    p.add_argument("--key", default=None, help="also create the hub key at this path")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=_init)

    audit = hs.add_parser("audit", help="audit trail")
    aus = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    p = aus.add_parser("verify", help="recompute the hash chain; exit 1 if any row was tampered")
    _common(p)
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="signed checkpoints (JSON lines): fail if the chain is shorter or differs",
    )
    p.add_argument(
        "--hub-key", default=None, help="hub key (PEM) or its base64url public key, in a file"
    )
    p.set_defaults(func=_audit_verify)
    p = aus.add_parser("checkpoint", help="sign the chain head with the hub key (export it)")
    _common(p)
    p.add_argument("--hub-key", default=None, help="the hub's key (PEM); default KYUKYU_HUB_KEY")
    p.add_argument("--out", default=None, help="append the checkpoint to this file")
    p.set_defaults(func=_audit_checkpoint)

    p = hs.add_parser(
        "backup", help="back the database up (pg_dump -Fc, or SQLite's online backup)"
    )
    _common(p)
    p.add_argument("--out", required=True, help="the backup file (mode 600)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=_backup)

    p = hs.add_parser(
        "restore", help="restore a backup (hub stopped) and sign a restore marker into the audit"
    )
    _common(p)
    p.add_argument("backup", help="a file of kyukyu hub backup")
    p.add_argument("--hub-key", default=None, help="the hub's key (PEM); default KYUKYU_HUB_KEY")
    p.add_argument(
        "--checkpoint-out",
        default=None,
        help="append the marker to this checkpoint file (default: the hub's checkpoint file)",
    )
    p.add_argument(
        "--event-gap",
        type=int,
        default=1_000_000,
        help="event numbers every recipient skips (it may hold events past the backup); "
        "the device roster's version moves on by as much",
    )
    p.set_defaults(func=_restore)

    p = hs.add_parser("revoke", help="revoke a device, hospital, operator or technician (audited)")
    _common(p)
    p.add_argument(
        "kind",
        choices=["device", "hospital", "operator", "technician"],
        help="what to revoke",
    )
    p.add_argument("id", help="its id (or key id, e.g. device:<id>)")
    p.add_argument("--reason", default=None, help="recorded in the audit trail")
    p.set_defaults(func=_revoke)

    region = hs.add_parser("region", help="regions of devices and hospitals (応需状況)")
    rs = region.add_subparsers(dest="region_command", required=True)
    p = rs.add_parser("set", help="create or change a region (audited)")
    _common(p)
    p.add_argument("code", help="e.g. JP-34 (A-Z a-z 0-9 _ . -, at most 40)")
    p.add_argument("--name", required=True, help="e.g. 広島県")
    p.add_argument(
        "--neighbour",
        action="append",
        default=None,
        help="a region whose hospitals this region's devices also see; repeat for each."
        " The whole list: one left out is no longer a neighbour",
    )
    p.add_argument(
        "--direct-route",
        action="store_true",
        help="opt the region in to the disaster route: its hospitals' direct addresses go"
        " into the signed directory (docs/disaster.md); left out: off",
    )
    p.set_defaults(func=_region)
    p = rs.add_parser("list", help="every region and its neighbours (JSON lines)")
    _common(p)
    p.set_defaults(func=_region)

    p = hs.add_parser(
        "incidents", help="mass-casualty incidents and their tallies (JSON lines, no patient data)"
    )
    _common(p)
    p.add_argument("--limit", type=int, default=200, help="newest first, at most this many")
    p.set_defaults(func=_incidents)

    p = hs.add_parser(
        "refused-cases",
        help="(operator) cases hospitals reported refusing: JSON lines, no content",
    )
    p.add_argument("--platform", required=True, help="the platform's base URL")
    p.add_argument(
        "--platform-ca", type=Path, default=None, help="PEM CA to pin for the platform's TLS"
    )
    p.add_argument("--operator-key", required=True, help="operator-key.json")
    p.add_argument("--hospital", default=None, help="only this hospital's reports")
    p.add_argument("--after", type=int, default=0, help="reports after this report id")
    p.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    p.set_defaults(func=_refused_cases)

    p = hs.add_parser(
        "hospitals",
        help="(operator) hospitals and their key kinds (JSON lines); --without-pq: those"
        " still without a hybrid (post-quantum) key",
    )
    p.add_argument("--platform", required=True, help="the platform's base URL")
    p.add_argument(
        "--platform-ca", type=Path, default=None, help="PEM CA to pin for the platform's TLS"
    )
    p.add_argument("--operator-key", required=True, help="operator-key.json")
    p.add_argument("--without-pq", action="store_true", help="only hospitals without a hybrid key")
    p.set_defaults(func=_hospitals)

    p = hs.add_parser("seed", help="fill the synthetic medical source")
    _common(p)
    p.add_argument("--medical-db", default=None, help="medical source URL (default: --db)")
    p.add_argument("--patients", type=int, default=1000, help="synthetic patients to create")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    p.add_argument("--cards", type=int, default=0, help="virtual cards to issue for patients")
    p.add_argument("--cards-dir", default=None, help="where to write the virtual cards")
    p.add_argument("--ca-dir", default=None, help="test CA directory that issues the cards")
    p.set_defaults(func=_seed)

    p = hs.add_parser("purge", help="retention: purge delivered sealed cases now")
    _common(p, trust=True)
    p.add_argument(
        "--retention",
        type=int,
        default=None,
        help="seconds to keep delivered cases (default: the hub's setting)",
    )
    p.set_defaults(func=_purge)

    p = hs.add_parser("ingest-crl", help="ingest a DER CRL from the CA")
    _common(p, trust=True)
    p.add_argument("crl", help="DER CRL file")
    p.set_defaults(func=_ingest_crl)
