"""Alembic environment of the hospital's database (not the platform's: its own metadata).

``hospital.schema.migrate`` runs it on an open connection that already holds the
migration lock (``config.attributes["connection"]``); batch mode on SQLite, which
alters a column by copying the table. Without a connection (the ``alembic`` command
line, e.g. to autogenerate a revision) it opens one from ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from hospital.schema import make_engine
from hospital.store import metadata

target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name != "postgresql",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None, "set sqlalchemy.url, or run hospital.schema.migrate"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


run_migrations_online()
