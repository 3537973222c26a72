"""Alembic environment: the hub's models, batch mode on SQLite, one migrator at a time on PG."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

import hub_server.models  # noqa: F401  (registers the tables)
from hub_server.core.db import make_engine

target_metadata = SQLModel.metadata
# Arbitrary constant: several hub processes starting together migrate one after the other.
_PG_LOCK = 0x6B79_6B79


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, pool_size=1)
    is_pg = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if is_pg:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=not is_pg,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if is_pg:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
                connection.commit()
    engine.dispose()


run_migrations_online()
