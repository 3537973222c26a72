"""The device's settings and identity: one object, read from a file and the environment.

Where things live on a device (``/var/lib/kyukyu-edge`` by default, systemd's
``StateDirectory``), which platform it talks to and which keys it pins. The
case flow, the UI wiring and the technician commands all read this one object.

``load_device_settings`` reads it the way every role does (``errbase.settings``),
highest first: keyword arguments (the command line), ``KYUKYU_EDGE_*`` environment
variables, the settings file (``KYUKYU_EDGE_CONFIG``, default ``/etc/kyukyu/edge.env``;
python-dotenv syntax: quotes, inline ``# comments`` and ``export`` lines as a shell
reads them; ``kyukyu provision`` writes it), files named like the variables in
``$CREDENTIALS_DIRECTORY``, the defaults below. Secrets (the device key) are files,
never values: under systemd they come through ``LoadCredential=`` into
``$CREDENTIALS_DIRECTORY``. A bad value is a ``SettingsError`` naming its variable.

``settings_file_text`` writes that file's lines with python-dotenv (``dotenv.set_key``:
each value quoted so that it reads back as written; every other line and comment kept).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dotenv
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from errbase import InvalidSettings
from errbase.paths import EDGE_CONFIG, EDGE_DATA_DIR
from errbase.settings import load_settings

__all__ = [
    "DEFAULT_CONFIG",
    "PREFIX",
    "DeviceSettings",
    "SettingsError",
    "load_device_settings",
    "settings_file_text",
]

DEFAULT_CONFIG = Path(EDGE_CONFIG)
PREFIX = "KYUKYU_EDGE_"


class SettingsError(InvalidSettings):
    """The device's settings are missing or malformed (one clear line, no traceback)."""

    code = "settings_invalid"
    message_ja = "端末の設定に誤りがあります。技術担当者に連絡してください。"
    message_en = "The device settings are invalid"


class DeviceSettings(BaseSettings):
    """Everything the device needs to know about itself and its platform."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", validate_default=True, frozen=True
    )

    data_dir: Path = Field(
        Path(EDGE_DATA_DIR),
        description="State directory: outbox, cursor, pinned documents (no plain patient data).",
    )
    hub_url: str | None = Field(
        None, description="The platform's base URL, e.g. https://hub.example"
    )
    device_id: str | None = Field(None, description="This device's id from enrollment.")
    device_key_file: Path | None = Field(
        None, description="Ed25519 private key (PEM, 0600). Default: <data_dir>/device-key.pem."
    )
    hub_public_key: str | None = Field(
        None, description="The platform's pinned Ed25519 key (base64url raw), set at enrollment."
    )
    enrolled_at: str | None = Field(
        None, description="When this device enrolled (ISO 8601 UTC; `kyukyu provision enroll`)."
    )
    device_key_max_age_days: int = Field(
        730, gt=0, description="Rotate (re-enroll) the device key after this many days."
    )
    revocation_max_age_hours: float = Field(
        72.0, gt=0, description="A revocation snapshot older than this is expired."
    )
    hub_ca_file: Path | None = Field(
        None, description="PEM CA that the platform's TLS certificate must chain to (pinned)."
    )
    roots_dir: Path | None = Field(
        None, description="JPKI roots directory (installed by `kyukyu provision trust install`)."
    )
    test_roots: bool = Field(False, description="Accept test roots (development and demo only).")
    base_lat: float = Field(35.6812, description="Latitude used to sort hospitals nearest first.")
    base_lon: float = Field(139.7671, description="Longitude used to sort hospitals nearest first.")
    reader: Literal["pcsc", "nfc"] = Field("pcsc", description="pcsc (pcscd) or nfc (nfcpy).")
    reader_name: str | None = Field(None, description="PC/SC reader name or nfcpy path.")
    idle_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Idle seconds before the screen forgets the patient.",
    )
    direct_unreachable_s: float = Field(
        60.0,
        gt=0,
        description="Seconds the platform must be out before cases take the direct route to"
        " their hospitals (where the region opted in; docs/disaster.md).",
    )
    device_name: str = Field("救急隊", description="This ambulance's name as hospitals see it.")
    fire_department: str | None = Field(None, description="The fire department (消防本部).")
    crew_member: str = Field(
        "隊員", description="Staff id of the crew member on duty (audit trail of look-ups)."
    )
    team_leader: str | None = Field(None, description="隊長: the team leader's name.")
    callback_phone: str | None = Field(
        None, description="The phone number hospitals call the crew back on."
    )
    web_port: int = Field(8765, ge=0, le=65535, description="`kyukyu edge --web` port.")
    language: Literal["ja", "en"] = Field("ja", description="Screen language.")
    theme: Literal["day", "night"] = Field("day", description="Screen theme.")

    @property
    def key_file(self) -> Path:
        """Where the device key is (the explicit setting, else inside ``data_dir``)."""
        return self.device_key_file or self.data_dir / "device-key.pem"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite3"

    @property
    def directory_path(self) -> Path:
        """The hub-signed hospital directory, as received (verified on every load)."""
        return self.data_dir / "directory.json"

    @property
    def availability_path(self) -> Path:
        """The last 応需状況 snapshot of this device's regions (operational, no patient data)."""
        return self.data_dir / "availability.json"

    @property
    def revocation_path(self) -> Path:
        """The hub-signed revocation snapshot: ``edge.jpki.revocation`` KKRV bytes as received
        from ``/v1/revocation/snapshot.kkrv`` (check the signature with the pinned hub key)."""
        return self.data_dir / "revocation.kkrv"

    @property
    def removal_marker_path(self) -> Path:
        """Empty while present: a finished case's card may still lie on the reader and is
        no new tap until taken away (kept across processes: each kiosk session is one)."""
        return self.data_dir / "card-on-reader"

    @property
    def trust_bundle_path(self) -> Path:
        """The platform-signed trust bundle, as accepted (verified on every load; never older)."""
        return self.data_dir / "trust-bundle.json"

    @property
    def enrolled(self) -> bool:
        return bool(self.hub_url and self.device_id and self.hub_public_key)


def load_device_settings(config: Path | None = None, **overrides: Any) -> DeviceSettings:
    """Settings from ``overrides``, the environment, ``config`` (or ``KYUKYU_EDGE_CONFIG``)
    and ``$CREDENTIALS_DIRECTORY``, in that order; ``None`` overrides are left out.

    Raises:
        SettingsError: a value does not parse, or the file cannot be read.
    """
    return load_settings(
        DeviceSettings,
        config=config,
        config_variable="KYUKYU_EDGE_CONFIG",
        default_config=DEFAULT_CONFIG,
        error=SettingsError,
        overrides=overrides,
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError("a setting may not contain a line break")
    return text


def settings_file_text(text: str, values: Mapping[str, object | None]) -> str:
    """``text`` (a settings file's content) with ``values`` set, or removed where ``None``.

    Keys are ``DeviceSettings`` field names. python-dotenv writes the lines
    (``KYUKYU_EDGE_HUB_URL='https://hub.example'``), so what ``load_device_settings``
    reads back is what was written; every other line and comment stays as it was.

    Raises:
        ValueError: an unknown field, or a value with a line break.
    """
    unknown = sorted(set(values) - set(DeviceSettings.model_fields))
    if unknown:
        raise ValueError(f"unknown setting {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="kyukyu-edge-env-") as tmp:
        path = Path(tmp) / "edge.env"
        path.write_text(text, encoding="utf-8")
        for field, value in values.items():
            key = PREFIX + field.upper()
            if value is not None:
                dotenv.set_key(path, key, _text(value), quote_mode="always")
            elif key in dotenv.dotenv_values(path):
                dotenv.unset_key(path, key)
        return path.read_text(encoding="utf-8")
