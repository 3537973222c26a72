"""Reading a role's settings: one way for the device, the hub and the hospital.

Each role declares one pydantic-settings class with its prefix (``KYUKYU_EDGE_``,
``KYUKYU_HUB_``, ``KYUKYU_HOSPITAL_``) and reads it with ``load_settings``. Sources,
highest precedence first:

1. explicit overrides (the command line's options that were given; ``None`` means
   "not given" and overrides nothing),
2. environment variables,
3. the role's settings file (``KYUKYU_<ROLE>_CONFIG``, default
   ``/etc/kyukyu/<role>.env``), read by pydantic-settings' dotenv support: python-dotenv
   syntax, so ``KEY='quoted value'``, ``KEY=value  # a comment`` and
   ``export KEY=value`` all mean what a shell would make of them,
4. files in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``), one per setting,
   named like its variable,
5. the defaults of the class.

Nothing is read at import time. A value that does not parse becomes the role's
``InvalidSettings`` subclass, one line naming the variable and the value.

A layer of its own (``tests/test_layering.py``): it imports the error base and
pydantic-settings only, so the three roles' settings modules can share it while
``errbase`` itself stays stdlib-only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from errbase import InvalidSettings

__all__ = ["credentials_dir", "describe_error", "load_settings", "settings_file"]

S = TypeVar("S", bound=BaseSettings)


def credentials_dir() -> Path | None:
    """``$CREDENTIALS_DIRECTORY`` (systemd credentials) when it is set and a directory."""
    raw = os.environ.get("CREDENTIALS_DIRECTORY")
    if raw and Path(raw).is_dir():
        return Path(raw)
    return None


def settings_file(
    config: Path | None, variable: str, default: Path, error: type[InvalidSettings]
) -> Path | None:
    """The settings file to read: ``config``, else ``$variable``, else ``default``.

    ``None`` when it does not exist (every setting has a default or comes from elsewhere).

    Raises:
        error: the file exists but cannot be read (a clear error, not a silent default).
    """
    path = config or Path(os.environ.get(variable) or default)
    try:
        if not path.is_file():
            return None
        path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: {exc.strerror}") from None
    return path


def _env_name(cls: type[BaseSettings]) -> Callable[[str], str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return lambda field: prefix + field.upper()


def describe_error(
    exc: ValidationError,
    cls: type[BaseSettings],
    *,
    env_name: Callable[[str], str] | None = None,
    hidden: Collection[str] = (),
) -> str:
    """One line for the first problem: the variable, pydantic's message, the bad value.

    The values of ``hidden`` fields (URLs that may hold a password) are never shown.
    """
    name_of = env_name or _env_name(cls)
    errors = exc.errors()
    first = errors[0]
    loc = str(first["loc"][0]) if first["loc"] else ""
    field = loc if loc in cls.model_fields else None
    if field is None:  # an alias as it was read (``kyukyu_hub_db``): back to its field
        field = next((f for f in cls.model_fields if name_of(f).lower() == loc.lower()), None)
    name = name_of(field) if field is not None else loc.upper()
    value = first.get("input")
    shown = ""
    if field not in hidden and not isinstance(value, (dict, list)):
        shown = f" (got {value!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return " ".join(f"{name}: {first['msg']}{shown}{more}".split())


def load_settings(
    cls: type[S],
    *,
    config: Path | None,
    config_variable: str,
    default_config: Path,
    error: type[InvalidSettings],
    overrides: Mapping[str, object] | None = None,
    env_name: Callable[[str], str] | None = None,
    hidden: Collection[str] = (),
) -> S:
    """A role's settings from every source (see the module docstring).

    Args:
        cls: the role's settings class (its ``env_prefix`` names the variables).
        config: the settings file given on the command line, if any.
        config_variable: the variable naming the settings file (``KYUKYU_HUB_CONFIG``).
        default_config: the settings file when neither is given.
        error: the role's ``InvalidSettings`` subclass.
        overrides: values by field name; ``None`` values are left out.
        env_name: a field's variable, where it is not prefix + FIELD (aliases).
        hidden: fields whose bad value an error must not repeat.

    Raises:
        error: a value does not parse, or the settings file cannot be read.
    """
    env_file = settings_file(config, config_variable, default_config, error)
    values: dict[str, Any] = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return cls(_env_file=env_file, _secrets_dir=credentials_dir(), **values)
    except ValidationError as exc:
        raise error(describe_error(exc, cls, env_name=env_name, hidden=hidden)) from None
