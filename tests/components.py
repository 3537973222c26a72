"""Real components the suites start: pcscd with vpcd, PostgreSQL.

A suite that needs a component fails (never skips) when it is missing:
``scripts/bootstrap`` installs the Debian packages, and CI machines run PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kyukyu.testing import VPCD_HOST, VPCD_PORTS, PcscdUnavailable, ensure_pcscd

READER_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")
# Several test runs on one machine (developers' helpers) share the one pcscd:
# a lock file serialises them.
PCSCD_LOCK = Path("/tmp/kyukyu-pcscd.lock")


@dataclass(frozen=True)
class Pcscd:
    """A running pcscd with the vpcd driver: two virtual readers."""

    host: str
    ports: tuple[int, int]
    readers: tuple[str, str]
    log: Path


@contextlib.contextmanager
def running_pcscd(log_dir: Path) -> Iterator[Pcscd]:
    """Start (or reuse) pcscd with vpcd, holding the machine-wide lock meanwhile."""
    PCSCD_LOCK.touch(exist_ok=True)
    lock = PCSCD_LOCK.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    log = log_dir / "pcscd.log"
    try:
        try:
            ensure_pcscd(log)
        except PcscdUnavailable as exc:
            pytest.fail(f"{exc}; see {log}")
        yield Pcscd(VPCD_HOST, VPCD_PORTS, READER_NAMES, log)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


PG_ADMIN_URL = os.environ.get("KYUKYU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its SQLAlchemy URL (psycopg 3)."""
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is not installed: run scripts/bootstrap")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"kyukyu_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
