"""The hospital database's migrations, on SQLite and PostgreSQL.

A database of the last release before migrations (``create_all`` of its models, frozen
in ``_release_0001``) upgrades at start-up with its rows; the revisions build exactly
the models; 0001 is exactly that release's schema; one process migrates at a time.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text

from hospital.errors import DatabaseSchemaError
from hospital.schema import (
    MIGRATION_LOCK_KEY,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    sqlite_lock_path,
)
from hospital.store import HospitalStore, metadata
from tests._process import cli_env
from tests.components import fresh_postgres_database
from tests.hospital import _release_0001
from tests.hospital._world import make_bundle

HEAD = "0006_case_device_index"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hospital.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def _diff(url: str, target: MetaData) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, target))
    finally:
        engine.dispose()


def test_a_database_of_the_last_release_upgrades_with_its_rows(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hospital.schema")
    engine = create_engine(db_url)
    _release_0001.metadata.create_all(engine)
    tables = _release_0001.metadata.tables
    received = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
    with engine.begin() as conn:  # rows as the last release wrote them
        conn.execute(
            tables["cases"].insert(),
            {
                "case_id": "old-1",
                "event_id": 7,
                "device_id": "dev-1",
                "sealed_at": 2**31 - 1,
                "received_at": received,
                "blob": b"\x00ciphertext",
            },
        )
        conn.execute(
            tables["rejections"].insert(),
            {"at": received, "event_id": 8, "case_id": "old-2", "code": "envelope_malformed"},
        )
        conn.execute(
            tables["staff"].insert(),
            {
                "username": "alice",
                "display_name": "Alice",
                "password_hash": "h",
                "totp_secret": "s",
                "last_totp_step": 59_000_000,
                "failures": 0,
                "disabled": False,
                "created_at": received,
            },
        )
        if engine.dialect.name == "postgresql":
            # The defect this upgrade removes: 2**31 does not fit the old column.
            with pytest.raises(Exception, match="out of range"), conn.begin_nested():
                conn.execute(text("UPDATE cases SET sealed_at = 2147483648"))
    engine.dispose()

    store = HospitalStore(db_url, os.urandom(32))  # the start-up path of every command
    try:
        assert current_revision(store.engine) == HEAD
        messages = [r.getMessage() for r in caplog.records if r.name == "hospital.schema"]
        assert "hospital database made before migrations: taken as 0001_initial" in messages
        old = store.case("old-1")
        assert old is not None
        assert (old.event_id, old.device_id, old.sealed_at) == (7, "dev-1", 2**31 - 1)
        assert old.blob == b"\x00ciphertext"
        assert old.received_at == received
        assert old.sealed_at_suspect is False
        assert old.sender_department is None
        [rejection] = store.rejections()
        assert (rejection.event_id, rejection.case_id, rejection.code) == (
            8,
            "old-2",
            "envelope_malformed",
        )
        assert (rejection.device_id, rejection.reported_at) == (None, None)
        with store.engine.connect() as conn:
            step = conn.execute(text("SELECT last_totp_step FROM staff")).scalar_one()
        assert step == 59_000_000

        bundle = make_bundle("new-1", "dev-1")
        assert store.add_case(
            case_id="new-1", event_id=9, device_id="dev-1", sealed_at=2**40, bundle=bundle
        )
        new = store.case("new-1")
        assert new is not None
        assert new.sealed_at == 2**40
        assert new.sealed_at_suspect is True
        assert store.bundle_of(new) == bundle
    finally:
        store.close()
    assert _diff(db_url, metadata) == []


def test_the_revisions_build_the_models_and_0001_the_last_release(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    try:
        first = migrate(engine, "0001_initial")
        assert (first.before, first.after, first.unversioned_tables) == (
            None,
            "0001_initial",
            False,
        )
        assert _diff(db_url, _release_0001.metadata) == []
        # Straight from an empty database to the head, through the command line.
        command.downgrade(alembic_config(db_url=db_url), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    proc = subprocess.run(
        [sys.executable, "-m", "kyukyu", "hospital", "migrate", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=cli_env(tmp_path),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"before": None, "after": HEAD, "unversioned_tables": False}
    assert head_revision() == HEAD
    assert _diff(db_url, metadata) == []
    # Down one revision and up again: 0002's downgrade gives back 0001's schema.
    command.downgrade(alembic_config(db_url=db_url), "0001_initial")
    assert _diff(db_url, _release_0001.metadata) == []
    engine = make_engine(db_url)
    try:
        again = migrate(engine)
        assert (again.before, again.after) == ("0001_initial", HEAD)
    finally:
        engine.dispose()


def test_a_database_of_an_unknown_revision_is_a_typed_error(db_url: str) -> None:
    """A newer release wrote it: nothing is changed, the error names the revision."""
    engine = make_engine(db_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
        with pytest.raises(DatabaseSchemaError, match="0099_from_the_future") as err:
            HospitalStore(db_url, os.urandom(32))
        assert err.value.message_ja.startswith("病院データベース")
        assert current_revision(engine) == "0099_from_the_future"
    finally:
        engine.dispose()


def _hold_lock(db_url: str) -> tuple[Engine, Connection | int]:
    """Take the migration lock the way another migrating process holds it."""
    engine = make_engine(db_url)
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        conn.commit()
        return engine, conn
    lock_path = sqlite_lock_path(engine)
    assert lock_path is not None
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return engine, fd


def _release_lock(engine: Engine, holder: Connection | int) -> None:
    if isinstance(holder, int):
        os.close(holder)
    else:
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        holder.close()
    engine.dispose()


def test_a_second_process_waits_for_the_migrating_one(db_url: str, tmp_path: Path) -> None:
    engine, holder = _hold_lock(db_url)
    released = False
    proc = subprocess.Popen(
        [sys.executable, "-m", "kyukyu", "hospital", "migrate", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stderr is not None
        stderr = proc.stderr
        reader = threading.Thread(target=lambda: [lines.put(ln) for ln in stderr], daemon=True)
        reader.start()
        seen = []
        while True:
            line = lines.get(timeout=60)  # the process says it waits, or the test fails
            seen.append(line)
            if "waiting for another process's schema migration" in line:
                break
        # It waits before it touched anything.
        check = create_engine(db_url)
        assert "alembic_version" not in inspect(check).get_table_names()
        check.dispose()
        _release_lock(engine, holder)
        released = True
        assert proc.wait(timeout=120) == 0, seen
        assert proc.stdout is not None
        assert json.loads(proc.stdout.read()) == {
            "before": None,
            "after": HEAD,
            "unversioned_tables": False,
        }
    finally:
        if not released:
            _release_lock(engine, holder)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
