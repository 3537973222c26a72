"""Hub settings (pydantic-settings): environment, file, secrets, CLI; refusals in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hub_server.core.config import (
    HubSettingsError,
    InsecureSettings,
    Settings,
    load_hub_settings,
)
from tests._process import cli_env, run_kyukyu
from tests.components import fresh_postgres_database


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KYUKYU_HUB_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("KYUKYU_HUB_CONFIG", str(tmp_path / "absent.env"))


def test_prod_refuses_insecure_defaults() -> None:
    with pytest.raises(InsecureSettings) as exc:
        Settings(environment="prod").check()
    text = str(exc.value)
    for needed in ("hub_key_path", "trust_roots_dir", "PostgreSQL"):
        assert needed in text
    with pytest.raises(InsecureSettings):
        Settings(
            environment="prod",
            db_url="postgresql+psycopg://h/db",
            hub_key_path=Path("k.pem"),
            trust_roots_dir=Path("roots"),
            allow_test_roots=True,
        ).check()


def test_prod_accepts_a_complete_configuration_and_env_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Settings(
        environment="prod",
        db_url="postgresql+psycopg://h/db",
        hub_key_path=Path("k.pem"),
        trust_roots_dir=Path("roots"),
    )
    assert s.check() is s
    monkeypatch.setenv("KYUKYU_HUB_DB", "sqlite:///x.db")
    monkeypatch.setenv("KYUKYU_HUB_ALLOW_TEST_ROOTS", "True")  # any case
    monkeypatch.setenv("KYUKYU_HUB_POOL_SIZE", "7")
    monkeypatch.setenv("KYUKYU_HUB_RETENTION", "60")
    monkeypatch.setenv("KYUKYU_HUB_SSE_KEEPALIVE_SECONDS", "2.5")
    got = Settings.from_env(environment="test")
    assert got.db_url == "sqlite:///x.db"
    assert got.allow_test_roots is True
    assert got.environment == "test"
    assert (got.pool_size, got.case_retention_seconds, got.sse_keepalive_seconds) == (7, 60, 2.5)
    assert load_hub_settings(db_url="sqlite:///cli.db").db_url == "sqlite:///cli.db"
    monkeypatch.setenv("KYUKYU_HUB_ALLOW_TEST_ROOTS", "false")
    assert load_hub_settings().allow_test_roots is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KYUKYU_HUB_POOL_SIZE", "many"),
        ("KYUKYU_HUB_POOL_SIZE", "0"),
        ("KYUKYU_HUB_ENV", "production"),
        ("KYUKYU_HUB_ALLOW_TEST_ROOTS", "maybe"),
        ("KYUKYU_HUB_LISTEN_PORT", "70000"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(HubSettingsError) as exc:
        load_hub_settings()
    assert name in str(exc.value)
    assert "\n" not in str(exc.value)


def test_file_then_environment_then_arguments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "hub.env"
    conf.write_text("KYUKYU_HUB_DB=sqlite:///file.db\nKYUKYU_HUB_POOL_SIZE=3\n# a comment\n")
    monkeypatch.setenv("KYUKYU_HUB_CONFIG", str(conf))
    got = load_hub_settings()
    assert (got.db_url, got.pool_size) == ("sqlite:///file.db", 3)
    monkeypatch.setenv("KYUKYU_HUB_POOL_SIZE", "4")
    assert load_hub_settings().pool_size == 4
    assert load_hub_settings(pool_size=5).pool_size == 5


def test_secrets_come_from_the_credentials_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "KYUKYU_HUB_DB").write_text("postgresql+psycopg://hub:s3cret@db/hub")
    (creds / "hub-key.pem").write_text("not read here")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    got = load_hub_settings()
    assert got.db_url == "postgresql+psycopg://hub:s3cret@db/hub"
    assert got.is_postgres
    assert got.hub_key_path == creds / "hub-key.pem"
    monkeypatch.setenv("KYUKYU_HUB_DB", "sqlite:///env-wins.db")
    assert load_hub_settings().db_url == "sqlite:///env-wins.db"


# -- the command line, as a process -----------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp_path, **extra)


def _kyukyu(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_kyukyu(tmp_path, "hub", *args, **env)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"KYUKYU_HUB_POOL_SIZE": "abc"}, "KYUKYU_HUB_POOL_SIZE"),
        ({"KYUKYU_HUB_POOL_SIZE": "0"}, "KYUKYU_HUB_POOL_SIZE"),
        ({"KYUKYU_HUB_ENV": "production"}, "KYUKYU_HUB_ENV"),
        ({"KYUKYU_HUB_ALLOW_TEST_ROOTS": "maybe"}, "KYUKYU_HUB_ALLOW_TEST_ROOTS"),
        ({"KYUKYU_HUB_SSE_KEEPALIVE_SECONDS": "-1"}, "KYUKYU_HUB_SSE_KEEPALIVE_SECONDS"),
        ({"KYUKYU_HUB_ENV": "prod"}, "hub_key_path is required"),
        (  # "True" reads as true: the test roots are refused in prod
            {
                "KYUKYU_HUB_ENV": "prod",
                "KYUKYU_HUB_ALLOW_TEST_ROOTS": "True",
                "KYUKYU_HUB_DB": "postgresql+psycopg://h/db",
                "KYUKYU_HUB_KEY": "k.pem",
                "KYUKYU_HUB_TRUST_ROOTS": "roots",
            },
            "allow_test_roots must be off in prod",
        ),
    ],
)
def test_bad_settings_give_one_line_and_exit_code_2(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    done = _kyukyu(tmp_path, "serve", "--port", "1", **env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_kyukyu_hub_db_alone_makes_serve_use_postgresql(tmp_path: Path) -> None:
    import psycopg

    with fresh_postgres_database() as url:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kyukyu", "hub", "serve"],
            cwd=tmp_path,
            env=_env(tmp_path, KYUKYU_HUB_DB=url, KYUKYU_HUB_LISTEN_PORT=str(port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/v1/hub-key", timeout=2)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the hub did not start"
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(10)
        libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None  # migrated: the hub ran on this PostgreSQL database
        assert not (tmp_path / "kyukyu-hub.db").exists()  # and not on the default SQLite
