"""Engine construction and Alembic migrations (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "libpq_url",
    "make_autocommit_engine",
    "make_engine",
    "migrate",
    "utcnow",
]

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def utcnow() -> datetime:
    """Aware UTC now (SQLModel stores UTC and returns aware datetimes on both databases)."""
    return datetime.now(UTC)


def make_engine(db_url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned for the hub: WAL + busy timeout on SQLite, a bigger pool on PostgreSQL."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            db_url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(db_url, pool_size=pool_size, max_overflow=2 * pool_size, pool_recycle=1800)


def make_autocommit_engine(db_url: str, *, pool_size: int = 10) -> Engine | None:
    """PostgreSQL: autocommit connections with ``synchronous_commit=off`` (None on SQLite)."""
    if make_url(db_url).get_backend_name() != "postgresql":
        return None
    return create_engine(
        db_url,
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        pool_recycle=1800,
        isolation_level="AUTOCOMMIT",
        connect_args={"options": "-c synchronous_commit=off"},
    )


def libpq_url(db_url: str) -> str:
    """The plain libpq URL (for psycopg's own connections, e.g. LISTEN)."""
    url = make_url(db_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def alembic_config(db_url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return cfg


def migrate(db_url: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (safe to call from several processes)."""
    from alembic import command

    command.upgrade(alembic_config(db_url), revision)
