"""Settings refuse the development conveniences in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_server.core.config import InsecureSettings, Settings


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


def test_prod_accepts_a_complete_configuration_and_env_overrides() -> None:
    s = Settings(
        environment="prod",
        db_url="postgresql+psycopg://h/db",
        hub_key_path=Path("k.pem"),
        trust_roots_dir=Path("roots"),
    )
    assert s.check() is s
    env = {"KYUKYU_HUB_DB": "sqlite:///x.db", "KYUKYU_HUB_ALLOW_TEST_ROOTS": "1"}
    got = Settings.from_env(env, environment="test")
    assert got.db_url == "sqlite:///x.db"
    assert got.allow_test_roots
    assert got.environment == "test"
