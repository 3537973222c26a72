"""Time is 64-bit everywhere: no column with a time-like name is a 32-bit integer.

A 32-bit INTEGER of unix seconds overflows at 2038-01-19T03:14:08Z, and a device's
clock may say anything: the hospital's ``cases.sealed_at`` once did, and the insert
failed. Every such column of the platform and of the hospital must be a DateTime or a
BIGINT, in the models (SQLAlchemy metadata) and in the schema the migrations build on
PostgreSQL (where INTEGER is 32 bits; SQLite's INTEGER is 64 bits whatever it is called).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, create_engine, text
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import SQLModel

import hub_server.models  # noqa: F401  (registers the platform's tables)
from hospital.schema import make_engine as hospital_engine
from hospital.schema import migrate as hospital_migrate
from hospital.store import metadata as hospital_metadata
from hub_server.core.db import migrate as hub_migrate
from hub_server.medical import open_source
from tests.components import fresh_postgres_database
from tests.hospital import _release_0001

# at, *_at, *time*, expires*, *_until, *seen*, *step* (a TOTP step counts 30 s units)
TIME_LIKE = re.compile(r"(^|_)at$|time|^expires|_until$|seen|step")


def _base_type(type_: TypeEngine[object]) -> TypeEngine[object]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


def narrow_time_columns(metadata: MetaData) -> list[str]:
    """``table.column: TYPE`` of every time-like column neither DateTime nor BIGINT."""
    bad = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if not TIME_LIKE.search(column.name):
                continue
            base = _base_type(column.type)
            if not isinstance(base, DateTime | BigInteger):
                bad.append(f"{table.name}.{column.name}: {base!r}")
    return bad


def test_the_pattern_names_what_it_should() -> None:
    for name in ("at", "sealed_at", "created_at", "expires", "expires_at", "locked_until"):
        assert TIME_LIKE.search(name), name
    for name in ("last_seen", "last_totp_step", "timestamp", "this_time"):
        assert TIME_LIKE.search(name), name
    for name in ("event_seq", "status", "category", "path", "seat", "state", "format"):
        assert not TIME_LIKE.search(name), name


def test_the_guard_refuses_the_release_that_broke() -> None:
    """The hospital's tables before migrations: the guard finds their 32-bit times."""
    assert narrow_time_columns(_release_0001.metadata) == [
        "cases.sealed_at: Integer()",
        "staff.last_totp_step: Integer()",
    ]
    wide = MetaData()
    Table("t", wide, Column("seen_at", BigInteger), Column("valid_until", DateTime))
    assert narrow_time_columns(wide) == []


@pytest.mark.parametrize(
    ("role", "metadata"),
    [("hub", SQLModel.metadata), ("hospital", hospital_metadata)],
)
def test_models_keep_time_in_64_bits(role: str, metadata: MetaData) -> None:
    assert metadata.tables, role
    assert narrow_time_columns(metadata) == [], role


def test_the_medical_sources_tables_keep_time_in_64_bits(tmp_path: Path) -> None:
    """The synthetic source makes its own ``med_*`` tables (no migrations): as made."""
    url = f"sqlite:///{tmp_path / 'med.db'}"
    open_source(url).engine.dispose()
    engine = create_engine(url)
    reflected = MetaData()
    reflected.reflect(engine)
    engine.dispose()
    assert any(name.startswith("med_") for name in reflected.tables)
    assert narrow_time_columns(reflected) == []


_NARROW_SQL = text(
    "SELECT table_name, column_name, data_type FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND data_type IN ('integer', 'smallint')"
)


def _narrow_time_columns_in(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(_NARROW_SQL).all()
            n_columns = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.columns"
                    " WHERE table_schema = current_schema()"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert n_columns > 0
    return sorted(f"{t}.{c}: {d}" for t, c, d in rows if TIME_LIKE.search(c))


@pytest.mark.postgres
def test_migrations_build_64_bit_times_on_postgresql() -> None:
    with fresh_postgres_database() as url:
        hub_migrate(url)
        assert _narrow_time_columns_in(url) == []
    with fresh_postgres_database() as url:
        engine = hospital_engine(url)
        try:
            # The first revision is the release that broke: the guard sees it ...
            hospital_migrate(engine, "0001_initial")
            assert _narrow_time_columns_in(url) == [
                "cases.sealed_at: integer",
                "staff.last_totp_step: integer",
            ]
            # ... and the head has none.
            hospital_migrate(engine)
        finally:
            engine.dispose()
        assert _narrow_time_columns_in(url) == []
