"""Real components the suites start: pcscd with vpcd, PostgreSQL.

A suite that needs a component fails (never skips) when it is missing:
``scripts/bootstrap`` installs the Debian packages, and CI machines run PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_HOST = "127.0.0.1"
VPCD_PORTS = (35963, 35964)
READER_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")
# Several test runs on one machine (developers' helpers) share the one pcscd:
# a lock file serialises them.
PCSCD_LOCK = Path("/tmp/kyukyu-pcscd.lock")


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


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
    if shutil.which("pcscd") is None:
        pytest.fail("pcscd is not installed (Debian package pcscd): run scripts/bootstrap")
    if not VPCD_DRIVER.exists():
        pytest.fail("vsmartcard-vpcd is not installed (no libifdvpcd.so): run scripts/bootstrap")
    PCSCD_LOCK.touch(exist_ok=True)
    lock = PCSCD_LOCK.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    proc: subprocess.Popen[bytes] | None = None
    log = log_dir / "pcscd.log"
    try:
        if not port_open(VPCD_HOST, VPCD_PORTS[0]):
            # A pcscd without vpcd listening is of no use: replace it.
            subprocess.run(["pkill", "-x", "pcscd"], check=False)
            time.sleep(0.2)
            with contextlib.suppress(FileNotFoundError):
                Path("/run/pcscd/pcscd.comm").unlink()
            with log.open("wb") as fh:
                proc = subprocess.Popen(
                    ["pcscd", "--foreground"], stdout=fh, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + 15
            while not port_open(VPCD_HOST, VPCD_PORTS[0]):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pcscd did not start with vpcd; see {log}")
                time.sleep(0.05)
        yield Pcscd(VPCD_HOST, VPCD_PORTS, READER_NAMES, log)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
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
