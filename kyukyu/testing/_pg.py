"""A PostgreSQL cluster of its own for fault tests: ``initdb`` and ``pg_ctl`` on a free
loopback port, so that a test can stop, start or kill the database without touching the
shared server on 5432.

Run as root (a container, CI), the cluster belongs to the ``postgres`` user (PostgreSQL
refuses to run as root): its commands go through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kyukyu.testing._process import free_port

__all__ = ["PgCluster", "pg_cluster"]


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if not candidates:
        raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    return Path(candidates[-1]).parent


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


class PgCluster:
    """One cluster in ``root`` (``data/``, ``server.log``), trust authentication on
    ``127.0.0.1:port``, superuser ``postgres``."""

    def __init__(self, root: Path, *, port: int | None = None, fsync: bool = True) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port or free_port()
        self.fsync = fsync
        self._bin = _bindir()
        self._as_root = os.geteuid() == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PgCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        settings = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 200",
            f"fsync = {'on' if self.fsync else 'off'}",
        ]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        return self

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (sessions ended, a clean shutdown) or ``immediate`` (as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """A fast restart (sessions ended), waiting until it accepts connections again."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60",
            "restart",
        )  # fmt: skip

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name`` over TCP (no client tool: ``pg_ctl``'s directory
        need not hold ``createdb``)."""
        import psycopg
        from psycopg import sql

        conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def running(self) -> bool:
        cmd = [str(self._bin / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def pg_cluster(*, fsync: bool = True) -> Iterator[PgCluster]:
    """A started cluster in a fresh directory; stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="kyukyu-pg-"))
    root.chmod(0o755)  # the cluster's own user must reach its directory inside
    cluster = PgCluster(root / "pg", fsync=fsync)
    try:
        cluster.init().start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            if cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
