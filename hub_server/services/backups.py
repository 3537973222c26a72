"""Backing the platform's database up and restoring it (``kyukyu hub backup`` /
``kyukyu hub restore``).

A backup is ``pg_dump -Fc`` on PostgreSQL or SQLite's online backup API: a consistent
copy while the hub runs, mode 600. A restore (the hub stopped) replaces the database
with a backup (``pg_restore --clean --single-transaction``), migrates it to this release,
then in one transaction signs a restore marker with the hub key into the audit trail
(``core.audit.record_restore``) and moves every recipient's event counter forward by
``event_gap``, so that receivers already past the backup do not skip new cases. The
marker goes to the checkpoint stream too when one is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from errbase import KyukyuError
from hub_server.core.audit import record_restore
from hub_server.core.db import make_engine, migrate, utcnow
from hub_server.core.security import HubKey


class BackupFailed(KyukyuError):
    """A backup or a restore could not be made; ``detail`` says what (no data in it)."""

    code = "backup_failed"
    message_ja = "バックアップまたは復元に失敗しました。"
    message_en = "The backup or restore failed"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sqlite_path(db_url: str) -> Path:
    database = make_url(db_url).database
    if not database or database == ":memory:":
        raise BackupFailed("backup and restore need a SQLite file, not memory")
    return Path(database)


def _pg_tool(tool: str, db_url: str, *args: str) -> None:
    """Run ``pg_dump`` / ``pg_restore`` on ``db_url``: the password goes in the child's
    environment (``PGPASSWORD``), never on its command line (``ps`` shows that)."""
    url = make_url(db_url).set(drivername="postgresql")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    target = url.set(password=None).render_as_string(hide_password=False)
    command = [tool, f"--dbname={target}", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise BackupFailed(f"{tool} failed: {done.stderr.strip()[-500:]}")


def _sqlite_copy(source_uri: str, target: Path) -> None:
    source = sqlite3.connect(source_uri, uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # a consistent copy while writers go on
    finally:
        copy.close()
        source.close()


def backup_database(db_url: str, out: Path) -> str:
    """Write a backup of ``db_url`` to ``out`` (mode 600 from its creation: never readable
    by others while it is written); its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        if db_url.startswith("postgresql"):
            _pg_tool("pg_dump", db_url, "--format=custom", "--no-owner", f"--file={out}")
        else:
            _sqlite_copy(f"file:{_sqlite_path(db_url)}", out)
    except BaseException:
        out.unlink(missing_ok=True)  # no half a backup left behind
        raise
    return file_sha256(out)


def restore_database(
    db_url: str,
    backup: Path,
    hub_key: HubKey,
    *,
    event_gap: int,
    checkpoint_file: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Replace ``db_url`` with ``backup`` (the hub stopped), migrate it, and sign the
    restore marker into the audit trail (and ``checkpoint_file``); the marker."""
    if not backup.is_file():
        raise BackupFailed(f"no backup at {backup}")
    if db_url.startswith("postgresql"):
        _pg_tool(
            "pg_restore", db_url, "--clean", "--if-exists", "--no-owner",
            "--single-transaction", str(backup),
        )  # fmt: skip
    else:
        _sqlite_copy(f"file:{backup}?mode=ro", _sqlite_path(db_url))
    migrate(db_url)  # a backup of an older release: its schema brought up to this one
    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.begin() as conn:
            marker = record_restore(
                conn,
                hub_key,
                now=utcnow(),
                backup_sha256=file_sha256(backup),
                event_gap=event_gap,
            )
    finally:
        engine.dispose()
    if checkpoint_file is not None:
        line = json.dumps(marker, separators=(",", ":"), sort_keys=True)
        with open(checkpoint_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
    return marker
