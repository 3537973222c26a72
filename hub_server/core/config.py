"""Hub settings: one typed, validated object for the platform role (pydantic-settings).

Nothing is read at import time. ``load_hub_settings()`` (and ``Settings.from_env()``)
reads the way every role does (``errbase.settings``), highest precedence first:

1. keyword arguments (the CLI's options that were given; an option left out never
   overrides anything),
2. ``KYUKYU_HUB_*`` environment variables (names below),
3. the settings file ``KYUKYU_HUB_CONFIG`` (default ``/etc/kyukyu/hub.env``;
   ``KYUKYU_HUB_*=value`` lines, the same names, python-dotenv syntax: quotes, inline
   ``# comments``, ``export`` lines),
4. secrets as files in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``), one
   file per setting named like its variable (e.g. ``KYUKYU_HUB_DB`` holding a
   PostgreSQL URL with its password); a credential ``hub-key.pem`` there is the hub
   key when ``KYUKYU_HUB_KEY`` is not set,
5. the defaults below.

Names: ``KYUKYU_HUB_DB``, ``_ENV``, ``_KEY``, ``_TRUST_ROOTS``, ``_ALLOW_TEST_ROOTS``,
``_MEDICAL_DB``, ``_RETENTION``, ``_THREADS``, ``_LISTEN_HOST``, ``_LISTEN_PORT``; every
other field is ``KYUKYU_HUB_`` + its name in capitals (``KYUKYU_HUB_POOL_SIZE``).
Booleans read ``1/0``, ``true/false`` in any case, ``yes/no``, ``on/off``.

A value that does not parse is a ``HubSettingsError`` naming the variable in one line;
``check()`` refuses the development conveniences (ephemeral hub key, test trust roots,
SQLite) outside ``environment="dev"``/``"test"`` with ``InsecureSettings``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from errbase import InvalidSettings
from errbase.paths import HUB_CONFIG, HUB_DEV_DB_URL, HUB_KEY_CREDENTIAL
from errbase.settings import credentials_dir, describe_error, load_settings

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_DB_URL",
    "HubSettingsError",
    "InsecureSettings",
    "Settings",
    "env_name",
    "load_hub_settings",
]

DEFAULT_DB_URL = HUB_DEV_DB_URL
DEFAULT_CONFIG = Path(HUB_CONFIG)
PREFIX = "KYUKYU_HUB_"
# Fields whose variable is not PREFIX + NAME (kept from before pydantic-settings).
_NAMES = {
    "db_url": "KYUKYU_HUB_DB",
    "environment": "KYUKYU_HUB_ENV",
    "hub_key_path": "KYUKYU_HUB_KEY",
    "trust_roots_dir": "KYUKYU_HUB_TRUST_ROOTS",
    "medical_db_url": "KYUKYU_HUB_MEDICAL_DB",
    "case_retention_seconds": "KYUKYU_HUB_RETENTION",
    "request_threads": "KYUKYU_HUB_THREADS",
}


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return _NAMES.get(field, PREFIX + field.upper())


def _env(field: str) -> Any:
    return AliasChoices(env_name(field))


class HubSettingsError(InvalidSettings):
    """The hub's settings are missing or malformed (one clear line, no traceback)."""

    code = "hub_settings_invalid"
    message_ja = "プラットフォームの設定に誤りがあります。"
    message_en = "The hub settings are invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class InsecureSettings(HubSettingsError, ValueError):
    """The settings are only acceptable for development."""

    code = "hub_settings_insecure"
    message_ja = "本番環境では使えない設定です。"
    message_en = "The hub settings are for development only"


class Settings(BaseSettings):
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

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        validate_default=True,
    )

    db_url: str = Field(default=DEFAULT_DB_URL, min_length=1, validation_alias=_env("db_url"))
    environment: Literal["dev", "test", "prod"] = Field(
        default="dev", validation_alias=_env("environment")
    )
    hub_key_path: Path | None = Field(default=None, validation_alias=_env("hub_key_path"))
    trust_roots_dir: Path | None = Field(default=None, validation_alias=_env("trust_roots_dir"))
    allow_test_roots: bool = False
    medical_db_url: str | None = Field(default=None, validation_alias=_env("medical_db_url"))
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    max_skew_seconds: int = Field(default=300, gt=0)
    enrollment_token_ttl_seconds: int = Field(default=15 * 60, gt=0)
    challenge_ttl_seconds: int = Field(default=120, gt=0)
    case_retention_seconds: int = Field(
        default=24 * 3600, ge=0, validation_alias=_env("case_retention_seconds")
    )
    undelivered_retention_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    purge_interval_seconds: float = Field(default=300.0, gt=0)
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    # Events a stream may have waiting for its reader; past that it is closed ("behind")
    # and its client catches up by event number (bounds the memory of a stalled reader).
    sse_max_queued: int = Field(default=256, gt=0)
    # How long a stream holds events that came before an earlier one (stored by another
    # process, still on its way) before it reads the database instead (core/events/ordering).
    sse_gap_hold_seconds: float = Field(default=1.0, ge=0)
    # Case submissions admitted at once per process (waiting for a request thread or in
    # the database); past that POST /v1/cases answers 503 + Retry-After at once. 0: auto
    # (16 per request thread).
    max_pending_cases: int = Field(default=0, ge=0)
    # Prometheus metrics on 127.0.0.1:<port> (hub_server.core.metrics); None: not served.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    max_recipients: int = Field(default=20, gt=0)
    run_migrations: bool = True
    pool_size: int = Field(default=10, gt=0)
    # Threads for sync routes and database calls (0: anyio's default, 40). Fewer threads
    # per process contend less for the GIL while they hold row locks.
    request_threads: int = Field(default=0, ge=0, validation_alias=_env("request_threads"))
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8600, ge=0, le=65535)
    # Limits that hold with no proxy in front (docs/hub.md, "Threat model"). The
    # connection limits apply under ``kyukyu hub serve`` (door.server).
    max_header_bytes: int = Field(default=16 * 1024, gt=0)  # request line and headers
    max_headers: int = Field(default=64, gt=0)
    max_request_line_bytes: int = Field(default=8 * 1024, gt=0)
    # From the connection (or a request's first byte) to the end of its headers.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # end of headers to end of body
    keepalive_timeout_seconds: float = Field(default=5.0, gt=0)  # idle between requests
    max_connections: int = Field(default=4096, gt=0)  # per process (<= open files - 64)
    max_connections_per_client: int = Field(default=64, gt=0)  # per address, per process
    # Event streams per identity: across every process and host on PostgreSQL (session
    # advisory locks, core.events.leases), per process on SQLite.
    max_streams_per_identity: int = Field(default=4, gt=0)
    # Behind a load balancer (docs/hub.md, "Behind a load balancer"): the proxies whose
    # word about the client is believed, as uvicorn spells them ("10.0.0.5,10.1.0.0/16",
    # "*"); empty: none, every limit counts the address of the socket. From a trusted
    # peer, X-Forwarded-For names the client of a request (the unsigned-request rate
    # limit), and with ``proxy_protocol`` its connections must begin with a PROXY
    # protocol v2 header (HAProxy ``send-proxy-v2``), whose source address the
    # per-client connection cap counts, before any HTTP byte is read.
    forwarded_allow_ips: str = ""
    proxy_protocol: bool = False
    unsigned_rate: float = Field(default=10.0, gt=0)  # unsigned requests/s per address
    unsigned_burst: int = Field(default=50, ge=1)
    auth_failure_rate: float = Field(default=1.0, gt=0)  # failed signatures/s per address
    auth_failure_burst: int = Field(default=30, ge=1)
    identity_rate: float = Field(default=200.0, gt=0)  # signed requests/s per key id
    identity_burst: int = Field(default=400, ge=1)
    challenge_purge_seconds: float = Field(default=60.0, gt=0)  # expired challenges dropped
    revocation_poll_seconds: float = Field(default=0.5, gt=0)  # see core/revocation_watch
    # Signed audit checkpoints (the chain head signed with the hub key): how often, and
    # where to (a file of JSON lines; syslog: "host:port" or a socket path like /dev/log).
    audit_checkpoint_seconds: float = Field(default=300.0, gt=0)
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_syslog: str | None = None
    # Envelopes that are not sealed cases (KKSC): None = refused in prod, accepted in
    # dev/test (some tests and tools post opaque bytes).
    opaque_envelopes: bool | None = None
    # KYUKYU_HUB_REQUIRE_PQ: refuse envelopes that are not v2 (post-quantum hybrid) on the
    # case post (422 envelope_version_refused); the signed directory says so to devices.
    require_pq: bool = False
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            if item == "*":
                continue
            try:
                if "/" in item:
                    ipaddress.ip_network(item, strict=False)
                else:
                    ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return ",".join(items)

    @model_validator(mode="after")
    def _proxy_protocol_needs_proxies(self) -> Settings:
        if self.proxy_protocol and not self.forwarded_allow_ips:
            raise ValueError(
                "KYUKYU_HUB_PROXY_PROTOCOL needs KYUKYU_HUB_FORWARDED_ALLOW_IPS (the proxies "
                "whose PROXY header is believed)"
            )
        return self

    @property
    def is_postgres(self) -> bool:
        return self.db_url.startswith("postgresql")

    @property
    def accepts_opaque_envelopes(self) -> bool:
        if self.opaque_envelopes is None:
            return self.environment != "prod"
        return self.opaque_envelopes

    @property
    def pending_case_limit(self) -> int:
        """``max_pending_cases``, or 16 per request thread (anyio's 40 when unset)."""
        if self.max_pending_cases > 0:
            return self.max_pending_cases
        return 16 * (self.request_threads or 40)

    @property
    def medical_url(self) -> str:
        return self.medical_db_url or self.db_url

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        values = self.model_dump()
        values.update(changes)
        return _build(values)

    def check(self) -> Settings:
        """Refuse insecure defaults outside development; returns ``self``."""
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
            if self.opaque_envelopes:
                problems.append("opaque_envelopes must be off in prod")
            if problems:
                raise InsecureSettings("; ".join(problems))
        return self

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """``load_hub_settings(**overrides)``: environment, file, secrets, then overrides."""
        return load_hub_settings(None, **overrides)


# Values an error never repeats (a database URL may hold its password).
_HIDDEN = frozenset({"db_url", "medical_db_url"})


def _build(values: Mapping[str, Any]) -> Settings:
    """Settings validated from ``values`` (``with_`` gives every field: nothing else counts)."""
    try:
        return Settings.model_validate(dict(values))
    except ValidationError as exc:
        raise HubSettingsError(
            describe_error(exc, Settings, env_name=env_name, hidden=_HIDDEN)
        ) from None


def load_hub_settings(config: Path | None = None, **overrides: object) -> Settings:
    """The hub's settings from every source (see the module docstring).

    ``overrides`` are keyword arguments by field name; ``None`` values are ignored.

    Raises:
        HubSettingsError: a value does not parse, or the settings file cannot be read.
    """
    values = {k: v for k, v in overrides.items() if v is not None}
    credentials = credentials_dir()
    if credentials is not None:
        key = credentials / HUB_KEY_CREDENTIAL
        if key.is_file() and "hub_key_path" not in values and "KYUKYU_HUB_KEY" not in os.environ:
            values.setdefault("hub_key_path", key)
    return load_settings(
        Settings,
        config=config,
        config_variable="KYUKYU_HUB_CONFIG",
        default_config=DEFAULT_CONFIG,
        error=HubSettingsError,
        overrides=values,
        env_name=env_name,
        hidden=_HIDDEN,
    )
