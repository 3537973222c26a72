"""Engine construction and Alembic migrations (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool
from sqlmodel import create_engine

__all__ = [
    "MIGRATIONS_DIR",
    "ObservedQueuePool",
    "alembic_config",
    "instrument_pool",
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


class ObservedQueuePool(QueuePool):
    """A ``QueuePool`` that counts the checkouts under way (waiting for a connection)."""

    waiting: Any = None  # a gauge (``instrument_pool``)

    def _do_get(self) -> Any:
        gauge = self.waiting
        if gauge is None:
            return super()._do_get()
        gauge.inc()
        try:
            return super()._do_get()
        finally:
            gauge.dec()


def instrument_pool(engine: Engine, *, in_use: Any, waiting: Any) -> None:
    """Keep ``in_use`` at the pool's checked-out connections and count waiting checkouts."""
    pool = engine.pool
    if isinstance(pool, ObservedQueuePool):
        pool.waiting = waiting

    def _moved(*_args: Any) -> None:
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is not None:
            in_use.set(checked_out())

    event.listen(engine, "checkout", _moved)
    event.listen(engine, "checkin", _moved)


def make_engine(db_url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned for the hub: WAL + busy timeout on SQLite, a bigger pool on PostgreSQL."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            db_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            hide_parameters=True,  # no SQL parameter in an error's text (logs)
            **({} if url.database in (None, "", ":memory:") else {"poolclass": ObservedQueuePool}),
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
    return create_engine(
        db_url,
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        pool_recycle=1800,
        poolclass=ObservedQueuePool,
        hide_parameters=True,  # no SQL parameter in an error's text (logs)
    )


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
        poolclass=ObservedQueuePool,
        hide_parameters=True,
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
