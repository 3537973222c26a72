"""The hospital database's schema: Alembic revisions in ``hospital/migrations``.

Every ``HospitalStore`` upgrades its database to the head revision when it opens it
(``kyukyu hospital serve``, ``user add``, ``purge``, ...), and ``kyukyu hospital
migrate`` does it on its own and says which revision the database was at before and
after. One process migrates at a time: on PostgreSQL the migrator holds an advisory
lock (its own key, not the platform's), on a SQLite file an exclusive ``flock`` on
``<database>.migrate-lock`` beside it; a second process waits (it logs that it does)
and then finds nothing left to do.

A database made by a release before migrations existed (``create_all``: the tables,
no ``alembic_version``) is taken to be at ``0001_initial``: that revision creates only
the tables such a database lacks, so the upgrade goes on from there and keeps every
row.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect, text
from sqlmodel import create_engine

from hospital.errors import DatabaseSchemaError

__all__ = [
    "MIGRATIONS_DIR",
    "MIGRATION_LOCK_KEY",
    "Migration",
    "alembic_config",
    "current_revision",
    "head_revision",
    "make_engine",
    "migrate",
    "sqlite_lock_path",
]

LOG = logging.getLogger("hospital.schema")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# PostgreSQL advisory lock key of the hospital's migrator ("kyhp"; the hub's is "kyky").
MIGRATION_LOCK_KEY = 0x6B79_6870
# The tables of the first release; one of them without ``alembic_version``: made by create_all.
_FIRST_TABLES = frozenset({"audit", "cases", "closures", "rejections", "sessions", "staff"})


@dataclass(frozen=True)
class Migration:
    """What an upgrade did: the revision before (None: no version recorded) and after."""

    before: str | None
    after: str | None
    unversioned_tables: bool  # tables of a release before migrations were found

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "unversioned_tables": self.unversioned_tables,
        }


def make_engine(db_url: str) -> Engine:
    """The store's engine: on SQLite WAL, ``secure_delete`` and a file only staff may read."""
    kwargs: dict[str, Any] = {}
    if db_url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    # No SQL parameter in an error's text (a traceback, a log): a case's bundle, an
    # envelope, a device id are the parameters of the store's statements.
    engine = create_engine(db_url, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        path = engine.url.database
        if path and path != ":memory:":
            # The file holds ciphertext and workflow rows only, still: staff-only.
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
    return engine


def alembic_config(connection: Connection | None = None, db_url: str | None = None) -> Any:
    """An Alembic ``Config`` for ``hospital/migrations`` (on an open connection, or a URL)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # A drafted revision's file is named after its id ("0003_short_name.py").
    cfg.set_main_option("file_template", "%%(rev)s")
    if db_url is not None:
        cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision this release knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _revision_of(conn: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database (None: none recorded)."""
    with engine.connect() as conn:
        return _revision_of(conn)


def sqlite_lock_path(engine: Engine) -> Path | None:
    """The lock file a SQLite database's migrators share (None: in memory, nothing to share)."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return None
    return Path(f"{path}.migrate-lock")


@contextmanager
def _one_migrator(engine: Engine, conn: Connection) -> Iterator[None]:
    """Hold the migration lock of this database; wait (and say so) while another holds it."""
    if engine.dialect.name == "postgresql":
        key = {"k": MIGRATION_LOCK_KEY}
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), key).scalar_one():
            LOG.warning("waiting for another process's schema migration of the hospital database")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), key)
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), key)
            conn.commit()
        return
    lock_path = sqlite_lock_path(engine)
    if lock_path is None:
        yield
        return
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            LOG.warning("waiting for another process's schema migration of the hospital database")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def migrate(engine: Engine, revision: str = "head") -> Migration:
    """Upgrade the database of ``engine`` to ``revision`` (one process at a time).

    Raises:
        DatabaseSchemaError: the database is at a revision this release does not know
            (a newer release wrote it), or a step failed.
    """
    from alembic import command
    from alembic.util import CommandError

    try:
        with engine.connect() as conn, _one_migrator(engine, conn):
            before = _revision_of(conn)
            tables = set(inspect(conn).get_table_names())
            unversioned = before is None and bool(tables & _FIRST_TABLES)
            if unversioned:
                LOG.info("hospital database made before migrations: taken as 0001_initial")
            conn.commit()
            command.upgrade(alembic_config(conn), revision)
            conn.commit()
            after = _revision_of(conn)
            conn.commit()
    except CommandError as exc:
        # Alembic's own messages name revisions only (no row, no URL).
        raise DatabaseSchemaError(str(exc)[:300]) from exc
    except Exception as exc:
        # A database error's text may quote row values: only its kind is kept.
        raise DatabaseSchemaError(f"{type(exc).__name__} during the upgrade") from exc
    if before != after:
        LOG.info("hospital database schema: %s -> %s", before or "none", after)
    return Migration(before=before, after=after, unversioned_tables=unversioned)
