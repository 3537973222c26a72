"""The hospital's one settings object (pydantic-settings; ``KYUKYU_HOSPITAL_*`` variables).

``load_hospital_settings`` reads it the way every role does (``errbase.settings``),
highest first: keyword arguments (the command line's flags that were given),
``KYUKYU_HOSPITAL_<FIELD>`` environment variables, the settings file
(``KYUKYU_HOSPITAL_CONFIG``, default ``/etc/kyukyu/hospital.env``; python-dotenv
syntax: quotes, inline ``# comments``, ``export`` lines), files named like the
variables in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``, e.g.
``KYUKYU_HOSPITAL_DB_URL`` with a password), the defaults below. A bad value is a
``HospitalSettingsError`` naming its variable. Nothing is read at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from errbase import InvalidSettings
from errbase.paths import HOSPITAL_CONFIG
from errbase.settings import load_settings

__all__ = [
    "DEFAULT_CONFIG",
    "KEY_FILE",
    "HospitalSettings",
    "HospitalSettingsError",
    "load_hospital_settings",
]

DEFAULT_CONFIG = Path(HOSPITAL_CONFIG)
#: The hospital's private keys in its data directory (``hospital.identity``).
KEY_FILE = "hospital-key.json"


class HospitalSettingsError(InvalidSettings):
    """The hospital's settings are missing or malformed (one clear line, no traceback)."""

    code = "hospital_settings_invalid"
    message_ja = "病院システムの設定に誤りがあります。"
    message_en = "The hospital settings are invalid"


class HospitalSettings(BaseSettings):
    """Everything ``kyukyu hospital`` needs; command-line flags override the environment."""

    # extra="ignore" as in the other roles: the settings file may hold other lines.
    model_config = SettingsConfigDict(env_prefix="KYUKYU_HOSPITAL_", extra="ignore")

    data_dir: Path = Field(
        default=Path("hospital-data"),
        description="keys (0600), identity, stream cursor; the SQLite database by default",
    )
    key_file: Path | None = Field(
        default=None,
        description="the private key file (default <data_dir>/hospital-key.json; a systemd"
        " credential in production)",
    )
    db_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/hospital.db"
    )
    platform_url: str | None = Field(
        default=None, description="the platform's base URL (init stores it; this overrides)"
    )
    platform_ca_file: Path | None = Field(
        default=None, description="PEM CA to pin for the platform's TLS (default: system CAs)"
    )
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8600, ge=0, le=65535)
    session_ttl_seconds: int = Field(default=12 * 3600, ge=60, description="absolute limit")
    session_idle_seconds: int = Field(default=30 * 60, ge=60, description="idle limit")
    login_max_failures: int = Field(default=5, ge=1, description="failures before a lockout")
    login_lockout_seconds: int = Field(default=15 * 60, ge=1)
    retention_seconds: int = Field(
        default=7 * 24 * 3600, ge=0, description="opened cases are purged after this"
    )
    purge_interval_seconds: int = Field(default=300, ge=1)
    refusal_report_retry_seconds: int = Field(
        default=60, ge=1, description="retry reporting refused cases to the platform this often"
    )
    fhir_export_dir: Path | None = Field(
        default=None, description="write each case as a FHIR Bundle JSON file here"
    )
    fhir_endpoint: str | None = Field(
        default=None, description="POST each case Bundle to this FHIR server base URL"
    )
    cookie_secure: bool = Field(
        default=False, description="mark session cookies Secure (implied by tls_certfile)"
    )
    tls_certfile: Path | None = Field(
        default=None, description="serve the dashboard over HTTPS with this PEM certificate"
    )
    tls_keyfile: Path | None = Field(default=None, description="its PEM private key")
    direct_listen_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="serve the direct route (docs/disaster.md) on this port, over HTTPS with"
        " tls_certfile/tls_keyfile; unset: no direct route",
    )
    direct_public_url: str | None = Field(
        default=None,
        description="the direct route's address as devices reach it (https://host:port),"
        " registered on the platform for the signed directory",
    )
    roster_refresh_seconds: float = Field(
        default=60.0, gt=0, description="fetch the hub-signed device roster this often"
    )
    direct_reconcile_seconds: float = Field(
        default=5.0,
        gt=0,
        description="send answers given while the platform was out this often until it has them",
    )
    key_check_seconds: float = Field(
        default=10.0,
        gt=0,
        description="look at the key file this often (a rotation while serving; a case"
        " needing a key kind not held looks at once)",
    )
    availability_hours: float = Field(
        default=8.0, gt=0, le=72, description="応需状況 set without an expiry lasts this long"
    )
    availability_api_token: str | None = Field(
        default=None,
        min_length=24,
        description="bearer token of the local availability API (a bed-management system);"
        " unset: the API takes signed-in staff only",
    )

    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / KEY_FILE

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'hospital.db'}"


def load_hospital_settings(config: Path | None = None, **overrides: Any) -> HospitalSettings:
    """Settings from ``overrides``, the environment, ``config`` (or
    ``KYUKYU_HOSPITAL_CONFIG``) and ``$CREDENTIALS_DIRECTORY``, in that order; ``None``
    overrides are left out.

    Raises:
        HospitalSettingsError: a value does not parse, or the file cannot be read.
    """
    return load_settings(
        HospitalSettings,
        config=config,
        config_variable="KYUKYU_HOSPITAL_CONFIG",
        default_config=DEFAULT_CONFIG,
        error=HospitalSettingsError,
        overrides=overrides,
        hidden=("db_url", "availability_api_token"),
    )
