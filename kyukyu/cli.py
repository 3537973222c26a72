"""``kyukyu``: dispatches to the role command modules in ``kyukyu.commands``.

Each module exposes ``register(subparsers)`` and sets ``func`` on its parsers;
heavy imports happen inside the handlers so ``kyukyu --help`` stays fast.

Every option can also come from the environment: ``KYUKYU_<COMMAND>_<OPTION>``
(``kyukyu hub serve --db`` <- ``KYUKYU_HUB_DB``; ``kyukyu doctor --timeout`` <-
``KYUKYU_DOCTOR_TIMEOUT``), except where ``ENV_NAMES`` names the variable the
role's settings object already reads (``kyukyu edge --port`` <-
``KYUKYU_EDGE_WEB_PORT``) and the few options that must be typed (``NO_ENV``).
A command-line value beats the environment, which beats the default. Every
option's help shows its default and its variable (``KyukyuHelpFormatter``).

A bad value, here or in a role's settings (``errbase.InvalidSettings``: environment,
settings file, credentials), is one line on stderr naming the variable, and exit
status 2, in every command.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

COMMAND_MODULES = (
    "readers",
    "card",
    "card_sim",
    "hub",
    "hospital",
    "demo",
    "provision",
    "doctor",
    "edge",
)

# "<command path> <option>" -> the variable, where the role's settings already name it.
ENV_NAMES: dict[str, str] = {
    "hospital --db": "KYUKYU_HOSPITAL_DB_URL",
    "hospital --platform": "KYUKYU_HOSPITAL_PLATFORM_URL",
    "hospital --platform-ca": "KYUKYU_HOSPITAL_PLATFORM_CA_FILE",
    "hospital --host": "KYUKYU_HOSPITAL_LISTEN_HOST",
    "hospital --port": "KYUKYU_HOSPITAL_LISTEN_PORT",
    "hospital --retention": "KYUKYU_HOSPITAL_RETENTION_SECONDS",
    "hospital --fhir-dir": "KYUKYU_HOSPITAL_FHIR_EXPORT_DIR",
    "edge --host": "KYUKYU_EDGE_WEB_HOST",
    "edge --port": "KYUKYU_EDGE_WEB_PORT",
    "hub --host": "KYUKYU_HUB_LISTEN_HOST",
    "hub --port": "KYUKYU_HUB_LISTEN_PORT",
    "card --roots": "KYUKYU_JPKI_ROOTS",
}
# Options whose variable the role's settings read and check themselves: the command
# takes the value from there (a bad one is the settings' error: for ``kyukyu edge``, its
# 設定に誤り screen), so the parser leaves the variable alone.
SETTINGS_READ = frozenset({"edge --port"})
# Options that must be typed each time: an environment variable could make them stick.
NO_ENV = frozenset({"--force", "--help", "--version"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _version() -> str:
    try:
        return importlib.metadata.version("kyukyu")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "unknown"


class KyukyuHelpFormatter(argparse.HelpFormatter):
    """Appends each option's default and environment variable to its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or action.help == argparse.SUPPRESS:
            return text
        extra: list[str] = []
        if "default" not in text.lower() and action.default is not argparse.SUPPRESS:
            if isinstance(action, argparse._StoreTrueAction):
                extra.append("default: off")
            elif isinstance(action, argparse._StoreFalseAction):
                extra.append("default: on")
            elif action.default is None:
                extra.append("default: none")
            else:
                extra.append("default: %(default)s")
        env = getattr(action, "env_var", None)
        if env:
            extra.append(f"env {env}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            extra.append("no env")
        return f"{text} ({'; '.join(extra)})" if extra else text


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action]]:
    """Every (command path, parser, action) below ``parser``, subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))
        else:
            yield path, parser, action


def env_name(path: tuple[str, ...], action: argparse.Action) -> str | None:
    """The environment variable of an option (None for positionals and ``NO_ENV``)."""
    if not action.option_strings:
        return None
    option = max(action.option_strings, key=len)
    if option in NO_ENV or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return None
    group = path[0] if path else ""
    named = ENV_NAMES.get(f"{group} {option}")
    if named:
        return named
    stem = option.lstrip("-").upper().replace("-", "_")
    prefix = f"KYUKYU_{group.upper().replace('-', '_')}_" if group else "KYUKYU_"
    return prefix + stem


def _bad(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """A bad environment value: one line on stderr, exit code 2 (no usage text), worded
    as the roles' settings errors are (``errbase.InvalidSettings``)."""
    from errbase import InvalidSettings

    parser.exit(2, f"{parser.prog}: {InvalidSettings(message).one_line()}\n")


def _from_env(parser: argparse.ArgumentParser, action: argparse.Action, raw: str) -> Any:
    name = getattr(action, "env_var", "")
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        low = raw.strip().lower()
        if low not in _TRUE | _FALSE:
            _bad(parser, f"{name}: use 1 or 0 (got {raw!r})")
        on = low in _TRUE
        return on if isinstance(action, argparse._StoreTrueAction) else not on
    if isinstance(action, argparse._CountAction):
        try:
            return int(raw)
        except ValueError:
            _bad(parser, f"{name}: not a number (got {raw!r})")
    convert = action.type if callable(action.type) else str
    if isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*"):
        items = [s.strip() for s in raw.split(",") if s.strip()]
        try:
            values = [convert(s) for s in items]
        except (TypeError, ValueError):
            _bad(parser, f"{name}: invalid value (got {raw!r})")
        for v in values:
            if action.choices is not None and v not in action.choices:
                _bad(parser, f"{name}: {v!r} is not one of {sorted(action.choices)} (got {raw!r})")
        return values
    try:
        value = convert(raw)
    except (TypeError, ValueError):
        _bad(parser, f"{name}: invalid value (got {raw!r})")
    if action.choices is not None and value not in action.choices:
        _bad(parser, f"{name}: not one of {sorted(action.choices)} (got {raw!r})")
    return value


def _apply_environment(parser: argparse.ArgumentParser) -> None:
    for path, owner, action in walk(parser):
        owner.formatter_class = KyukyuHelpFormatter
        name = env_name(path, action)
        action.env_var = name  # type: ignore[attr-defined]
        if name is None or name not in os.environ:
            continue
        if f"{path[0] if path else ''} {max(action.option_strings, key=len)}" in SETTINGS_READ:
            continue
        action.default = _from_env(owner, action, os.environ[name])
        action.required = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kyukyu",
        description="マイナ救急 at the edge / My Number emergency at the edge",
        epilog="Any option may also be set as KYUKYU_<COMMAND>_<OPTION> in the environment "
        "(each option's help names its variable); the command line wins.",
        formatter_class=KyukyuHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kyukyu {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        mod = importlib.import_module(f"kyukyu.commands.{name}")
        mod.register(sub)
    _apply_environment(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from errbase import InvalidSettings

    try:
        rc = func(args)
    except InvalidSettings as exc:
        print(f"kyukyu {args.command}: {exc.one_line()}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
