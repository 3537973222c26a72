"""Alembic: an empty database and the previous revision upgrade to head, matching the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import hub_server.models  # noqa: F401
from hub_server.core.db import alembic_config, migrate
from kyukyu.cli import main as kyukyu

HUB_TABLES = {t for t in SQLModel.metadata.tables if not t.startswith("med_")}


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, SQLModel.metadata)
    engine.dispose()

    def table_of(d: object) -> str | None:
        item = d[0] if isinstance(d, list) else d
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None:
                return str(table.name)
            if name in HUB_TABLES:
                return str(name)
        return None

    return [d for d in diffs if table_of(d) in HUB_TABLES or table_of(d) is None]


def test_empty_database_upgrades_to_head_matching_the_models(db_url: str) -> None:
    assert kyukyu(["hub", "migrate", "--db", db_url]) == 0
    engine = create_engine(db_url)
    assert set(inspect(engine).get_table_names()) >= HUB_TABLES
    engine.dispose()
    assert _diff(db_url) == []


def test_previous_revision_upgrades_with_its_data(db_url: str) -> None:
    migrate(db_url, "0001")
    engine = create_engine(db_url)
    assert "revoked_serials" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices"
                " (id, name, fire_department, public_key, revoked, created_at, event_seq)"
                " VALUES ('d1', 'x', 'y', 'k', false, '2026-01-01 00:00:00', 3)"
            )
        )
    migrate(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT event_seq FROM devices WHERE id = 'd1'")).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM revoked_serials")).scalar_one() == 0
        assert conn.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_pending")).scalar_one() == 0
    engine.dispose()
    command.downgrade(alembic_config(db_url), "0001")
    migrate(db_url)
