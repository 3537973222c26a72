"""A real ``kyukyu hub serve`` (uvicorn, the guarded protocol) for the limit tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kyukyu.testing import wait_until_serving
from sync.signing import b64d
from tests.hub_server._support import Signer

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kyukyu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kyukyu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Served:
    url: str
    port: int
    db_url: str
    operator: Signer
    log: Path
    hub_key: Path


@contextmanager
def serve(
    tmp: Path, db_url: str, roots_dir: Path, limits: dict[str, str] | None = None
) -> Iterator[Served]:
    key_file = tmp / "operator.json"
    r = kyukyu("hub", "init", "--db", db_url, "--out", str(key_file), "--force")
    assert r.returncode == 0, r.stderr
    creds = json.loads(key_file.read_text())
    operator = Signer(
        creds["key_id"], Ed25519PrivateKey.from_private_bytes(b64d(creds["private_key"]))
    )
    port = free_port()
    log = tmp / "hub.log"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "KYUKYU_HUB_CONFIG": str(tmp / "none.env"),
        **{f"KYUKYU_HUB_{k.upper()}": v for k, v in (limits or {}).items()},
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kyukyu",
            "hub",
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--env",
            "test",
            "--key",
            str(tmp / "hub.key"),
            "--trust-roots",
            str(roots_dir),
            "--allow-test-roots",
            "--log-file",
            str(log),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "hub.err", "w"),  # noqa: SIM115
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, why=lambda: (tmp / "hub.err").read_text()[-3000:])
        yield Served(url, port, db_url, operator, log, tmp / "hub.key")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def raw(
    port: int, payload: bytes = b"", *, source: str = "127.0.0.1", timeout: float = 5.0
) -> socket.socket:
    """A raw loopback connection from ``source`` (any 127.0.0.0/8 address) that sent ``payload``."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    if payload:
        with suppress(OSError):
            s.sendall(payload)
    return s


def read_all(s: socket.socket, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything until the server closes (or ``limit`` seconds): (bytes, seconds taken)."""
    started = time.monotonic()
    s.settimeout(limit)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out, time.monotonic() - started


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])
