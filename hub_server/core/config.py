"""Hub settings: one frozen dataclass, built explicitly (nothing is read at import time).

``Settings.from_env()`` reads ``KYUKYU_HUB_*`` variables; ``check()`` refuses the
development conveniences (ephemeral hub key, test trust roots, SQLite) outside
``environment="dev"``/``"test"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["InsecureSettings", "Settings"]

DEFAULT_DB_URL = "sqlite:///kyukyu-hub.db"


class InsecureSettings(ValueError):
    """The settings are only acceptable for development."""


@dataclass(frozen=True)
class Settings:
    """Everything a hub process needs to know.

    Attributes:
        db_url: SQLAlchemy URL (``sqlite:///file.db`` or ``postgresql+psycopg://...``).
        environment: ``dev``, ``test`` or ``prod``.
        hub_key_path: file with the hub's Ed25519 private key (PEM); ``None`` in dev
            means an ephemeral key (the directory signature changes on restart).
        trust_roots_dir: directory of JPKI root certificates for patient certificates.
        allow_test_roots: accept the test CA's roots (``O=JPKI-TEST``); dev/test only.
        medical_db_url: where the medical source lives (defaults to ``db_url``).
    """

    db_url: str = DEFAULT_DB_URL
    environment: str = "dev"
    hub_key_path: Path | None = None
    trust_roots_dir: Path | None = None
    allow_test_roots: bool = False
    medical_db_url: str | None = None
    max_body_bytes: int = 256 * 1024
    max_skew_seconds: int = 300
    enrollment_token_ttl_seconds: int = 15 * 60
    challenge_ttl_seconds: int = 120
    case_retention_seconds: int = 24 * 3600
    undelivered_retention_seconds: int = 7 * 24 * 3600
    purge_interval_seconds: float = 300.0
    sse_keepalive_seconds: float = 15.0
    max_recipients: int = 20
    run_migrations: bool = True
    pool_size: int = 10
    # Threads for sync routes and database calls (0: anyio's default, 40). Fewer threads
    # per process contend less for the GIL while they hold row locks.
    request_threads: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_postgres(self) -> bool:
        return self.db_url.startswith("postgresql")

    @property
    def medical_url(self) -> str:
        return self.medical_db_url or self.db_url

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def check(self) -> Settings:
        """Refuse insecure defaults outside development; returns ``self``."""
        if self.environment not in {"dev", "test", "prod"}:
            raise InsecureSettings(f"unknown environment {self.environment!r}")
        if self.environment == "prod":
            problems = []
            if self.hub_key_path is None:
                problems.append("hub_key_path is required (no ephemeral hub key in prod)")
            if self.allow_test_roots:
                problems.append("allow_test_roots must be off in prod")
            if self.trust_roots_dir is None:
                problems.append("trust_roots_dir is required in prod")
            if not self.is_postgres:
                problems.append("prod runs on PostgreSQL")
            if problems:
                raise InsecureSettings("; ".join(problems))
        if self.max_body_bytes <= 0 or self.max_skew_seconds <= 0:
            raise InsecureSettings("limits must be positive")
        return self

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``KYUKYU_HUB_*`` variables, then ``overrides`` (non-None only)."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        if "KYUKYU_HUB_DB" in env:
            values["db_url"] = env["KYUKYU_HUB_DB"]
        if "KYUKYU_HUB_ENV" in env:
            values["environment"] = env["KYUKYU_HUB_ENV"]
        if "KYUKYU_HUB_KEY" in env:
            values["hub_key_path"] = Path(env["KYUKYU_HUB_KEY"])
        if "KYUKYU_HUB_TRUST_ROOTS" in env:
            values["trust_roots_dir"] = Path(env["KYUKYU_HUB_TRUST_ROOTS"])
        if "KYUKYU_HUB_ALLOW_TEST_ROOTS" in env:
            values["allow_test_roots"] = env["KYUKYU_HUB_ALLOW_TEST_ROOTS"] in {"1", "true"}
        if "KYUKYU_HUB_MEDICAL_DB" in env:
            values["medical_db_url"] = env["KYUKYU_HUB_MEDICAL_DB"]
        if "KYUKYU_HUB_RETENTION" in env:
            values["case_retention_seconds"] = int(env["KYUKYU_HUB_RETENTION"])
        if "KYUKYU_HUB_POOL_SIZE" in env:
            values["pool_size"] = int(env["KYUKYU_HUB_POOL_SIZE"])
        if "KYUKYU_HUB_THREADS" in env:
            values["request_threads"] = int(env["KYUKYU_HUB_THREADS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
