"""One settings mechanism for the three roles (``errbase.settings``), checked for each role.

The settings file is python-dotenv syntax (quotes, inline comments, ``export``), the
precedence is overrides > environment > file > ``$CREDENTIALS_DIRECTORY`` > defaults,
nothing is read at import, and a bad value is one line and exit status 2 in every
command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.settings import SettingsError, load_device_settings
from errbase import InvalidSettings
from hospital.settings import HospitalSettingsError, load_hospital_settings
from hub_server.core.config import HubSettingsError, env_name, load_hub_settings
from tests._process import CONFIG_VARIABLES, cli_env, run_kyukyu


@dataclass(frozen=True)
class Role:
    name: str
    load: Callable[..., Any]
    error: type[InvalidSettings]
    variable: Callable[[str], str]
    # Fields of each kind the tests write: a URL, a number, another string.
    url: str
    number: str
    text: str

    def __str__(self) -> str:
        return self.name


ROLES = [
    Role(
        "edge",
        load_device_settings,
        SettingsError,
        lambda f: f"KYUKYU_EDGE_{f.upper()}",
        url="hub_url",
        number="web_port",
        text="device_id",
    ),
    Role(
        "hub",
        load_hub_settings,
        HubSettingsError,
        env_name,  # the alias table: KYUKYU_HUB_MEDICAL_DB, not ..._MEDICAL_DB_URL
        url="medical_db_url",
        number="pool_size",
        text="listen_host",
    ),
    Role(
        "hospital",
        load_hospital_settings,
        HospitalSettingsError,
        lambda f: f"KYUKYU_HOSPITAL_{f.upper()}",
        url="platform_url",
        number="listen_port",
        text="fhir_endpoint",
    ),
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KYUKYU_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    for name in CONFIG_VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / "absent.env"))


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_the_settings_file_reads_as_python_dotenv_does(role: Role, tmp_path: Path) -> None:
    conf = tmp_path / f"{role.name}.env"
    conf.write_text(
        "# written by hand, then by kyukyu provision\n"
        f"{role.variable(role.url)}='https://hub.example'\n"
        f"{role.variable(role.number)}=8123 # set by provision\n"
        f'export {role.variable(role.text)}="dev 1 # not a comment"\n'
        "OTHER_PROGRAM=ignored\n",
        encoding="utf-8",
    )
    got = role.load(conf)
    assert getattr(got, role.url) == "https://hub.example"  # no quotes kept
    assert getattr(got, role.number) == 8123  # the comment is not the value
    assert getattr(got, role.text) == "dev 1 # not a comment"  # export line read


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_the_config_variable_names_the_file(
    role: Role, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "elsewhere.env"
    conf.write_text(f"{role.variable(role.number)}=8124\n", encoding="utf-8")
    monkeypatch.setenv(f"KYUKYU_{role.name.upper()}_CONFIG", str(conf))
    assert getattr(role.load(), role.number) == 8124


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_precedence_overrides_environment_file_secrets_defaults(
    role: Role, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = role.variable(role.number)
    default = getattr(role.load(), role.number)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / var).write_text("1001")  # systemd LoadCredential=: one file per setting
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert getattr(role.load(), role.number) == 1001 != default
    conf = tmp_path / "settings.env"
    conf.write_text(f"{var}=1002\n", encoding="utf-8")
    assert getattr(role.load(conf), role.number) == 1002
    monkeypatch.setenv(var, "1003")
    assert getattr(role.load(conf), role.number) == 1003
    assert getattr(role.load(conf, **{role.number: 1004}), role.number) == 1004
    # An option that was not given (None) overrides nothing.
    assert getattr(role.load(conf, **{role.number: None}), role.number) == 1003


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_a_secret_comes_from_the_credentials_directory(
    role: Role, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / role.variable(role.url)).write_text("https://user:s3cret@hub.example")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert getattr(role.load(), role.url) == "https://user:s3cret@hub.example"


@pytest.mark.parametrize("role", ROLES, ids=str)
@pytest.mark.parametrize("where", ["environment", "file"])
def test_a_bad_value_is_one_line_naming_the_variable(
    role: Role, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = role.variable(role.number)
    conf = tmp_path / "settings.env"
    if where == "file":
        conf.write_text(f"{var}='many' # typed by hand\n", encoding="utf-8")
    else:
        monkeypatch.setenv(var, "many")
    with pytest.raises(role.error) as info:
        role.load(conf)
    line = info.value.one_line()
    assert isinstance(info.value, InvalidSettings)
    assert "\n" not in line
    assert var in line
    assert "'many'" in line
    assert info.value.message_ja in line


# -- nothing is read at import -------------------------------------------------------

BAD_VALUES = {
    "KYUKYU_HUB_MAX_HEADERS": "abc",
    "KYUKYU_HUB_POOL_SIZE": "abc",
    "KYUKYU_EDGE_WEB_PORT": "abc",
    "KYUKYU_EDGE_IDLE_TIMEOUT_S": "soon",
    "KYUKYU_HOSPITAL_LISTEN_PORT": "99999",
    "KYUKYU_JPKI_ROOTS": "/nonexistent",
}

_IMPORT_ALL = """
import importlib, pkgutil, sys
package = sys.argv[1]
root = importlib.import_module(package)
names = [package]
for info in pkgutil.walk_packages(root.__path__, package + "."):
    if ".migrations" in info.name or info.name.endswith(".__main__"):
        continue  # alembic's env.py runs under alembic; __main__ runs the command line
    names.append(info.name)
for name in names:
    importlib.import_module(name)
print(len(names))
"""


@pytest.mark.parametrize("package", ["errbase", "edge", "sync", "hub_server", "hospital", "kyukyu"])
def test_every_module_imports_with_bad_settings_set(package: str, tmp_path: Path) -> None:
    bad_file = tmp_path / "bad.env"
    bad_file.write_text("".join(f"{k}={v}\n" for k, v in BAD_VALUES.items()), encoding="utf-8")
    env = cli_env(tmp_path, **BAD_VALUES, **dict.fromkeys(CONFIG_VARIABLES, str(bad_file)))
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, package],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 0


# -- every command: one line, exit status 2 ----------------------------------------------


def _bad_device_root(tmp_path: Path) -> Path:
    root = tmp_path / "device"
    (root / "etc/kyukyu").mkdir(parents=True)
    (root / "etc/kyukyu/edge.env").write_text(
        "KYUKYU_EDGE_HUB_URL='https://hub.example'\nKYUKYU_EDGE_WEB_PORT=abc # typed by hand\n"
    )
    return root


CASES = [
    # the hub
    (("hub", "serve"), {"KYUKYU_HUB_MAX_HEADERS": "abc"}, None, "KYUKYU_HUB_MAX_HEADERS"),
    (("hub", "migrate"), {}, "KYUKYU_HUB_POOL_SIZE=0 # none\n", "KYUKYU_HUB_POOL_SIZE"),
    (("hub", "serve"), {"KYUKYU_HUB_LISTEN_PORT": "abc"}, None, "KYUKYU_HUB_LISTEN_PORT"),
    # the hospital
    (("hospital", "serve"), {"KYUKYU_HOSPITAL_LISTEN_PORT": "99999"}, None, "LISTEN_PORT"),
    (
        ("hospital", "user", "list"),
        {},
        "export KYUKYU_HOSPITAL_SESSION_TTL_SECONDS=1\n",
        "KYUKYU_HOSPITAL_SESSION_TTL_SECONDS",
    ),
    (("hospital", "purge"), {"KYUKYU_HOSPITAL_RETENTION_SECONDS": "-5"}, None, "RETENTION"),
    # the device
    (("edge", "--check"), {"KYUKYU_EDGE_WEB_PORT": "abc"}, None, "KYUKYU_EDGE_WEB_PORT"),
    (("edge", "--check"), {}, "KYUKYU_EDGE_THEME='dusk'\n", "KYUKYU_EDGE_THEME"),
    (("provision", "refresh", "--root", "{device}"), {}, None, "KYUKYU_EDGE_WEB_PORT"),
    (("provision", "enroll", "--root", "{device}"), {}, None, "KYUKYU_EDGE_WEB_PORT"),
    (("doctor", "--root", "{device}"), {}, None, "KYUKYU_EDGE_WEB_PORT"),
    # the demo reads the hub's and the hospitals' settings through the same loaders
    (("demo", "--headless"), {"KYUKYU_HUB_MAX_HEADERS": "abc"}, None, "KYUKYU_HUB_MAX_HEADERS"),
    (("demo", "--headless"), {"KYUKYU_HOSPITAL_LISTEN_PORT": "99999"}, None, "LISTEN_PORT"),
]


@pytest.mark.parametrize(("argv", "env", "file", "needle"), CASES, ids=lambda v: str(v))
def test_a_bad_value_stops_every_command_with_one_line_and_status_2(
    tmp_path: Path, argv: tuple[str, ...], env: dict[str, str], file: str | None, needle: str
) -> None:
    device = _bad_device_root(tmp_path)
    args = [a.replace("{device}", str(device)) for a in argv]
    if argv[0] == "provision" and argv[1] == "enroll":
        args += ["--hub", "http://127.0.0.1:9", "--token=T"]
    extra = dict(env)
    if file is not None:
        conf = tmp_path / "role.env"
        conf.write_text(file, encoding="utf-8")
        extra[f"KYUKYU_{argv[0].upper()}_CONFIG"] = str(conf)
    done = run_kyukyu(tmp_path, *args, **extra)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]
    assert lines[0].startswith(f"kyukyu {argv[0]}")
    assert "Traceback" not in done.stderr
