"""The ``kyukyu`` command line: --version, options from the environment, help text."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kyukyu.cli import build_parser, env_name, main, walk


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"kyukyu {importlib.metadata.version('kyukyu')}"


def test_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KYUKYU_DOCTOR_TIMEOUT", "7.5")
    monkeypatch.setenv("KYUKYU_DOCTOR_NO_CARD_TEST", "1")
    monkeypatch.setenv("KYUKYU_PROVISION_ROLE", "edge,hub")
    monkeypatch.setenv("KYUKYU_HUB_DB", "sqlite:////var/lib/kyukyu-hub/hub.db")
    args = build_parser().parse_args(["doctor"])
    assert args.timeout == 7.5
    assert args.no_card_test is True
    # The command line beats the environment.
    assert build_parser().parse_args(["doctor", "--timeout", "2"]).timeout == 2.0
    args = build_parser().parse_args(["provision", "install"])
    assert args.role == ["edge", "hub"]
    args = build_parser().parse_args(["hub", "serve"])
    assert args.db == "sqlite:////var/lib/kyukyu-hub/hub.db"


def test_a_bad_environment_value_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KYUKYU_PROVISION_ROLE", "edge,toaster")
    with pytest.raises(SystemExit) as done:
        build_parser()
    assert done.value.code == 2
    assert "KYUKYU_PROVISION_ROLE" in capsys.readouterr().err
    monkeypatch.delenv("KYUKYU_PROVISION_ROLE")
    monkeypatch.setenv("KYUKYU_DOCTOR_TIMEOUT", "soon")
    with pytest.raises(SystemExit):
        build_parser()


def test_dangerous_flags_never_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KYUKYU_PROVISION_FORCE", "1")
    args = build_parser().parse_args(["provision", "retire"])
    assert args.force is False
    parser = build_parser()
    for path, _, action in walk(parser):
        if "--force" in action.option_strings:
            assert env_name(path, action) is None, path


def test_help_shows_default_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["doctor", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "seconds to wait for the platform (default: 5.0; env KYUKYU_DOCTOR_TIMEOUT)" in out
    assert "print JSON for fleet tools (default: off; env KYUKYU_DOCTOR_JSON)" in out


def test_my_commands_document_every_option() -> None:
    parser = build_parser()
    for path, sub, action in walk(parser):
        if path[:1] not in {("provision",), ("doctor",)}:
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{' '.join(path)} {action.option_strings or action.dest}"
        text = " ".join(sub.format_help().split())
        assert action.help.split()[0] in text
        if action.option_strings:
            var = env_name(path, action)
            assert var is None or var in text, (path, var)


def test_hardware_dir_is_found(tmp_path: Path) -> None:
    from edge.provision import hardware_dir

    assert (hardware_dir() / "systemd/kyukyu-edge.service").is_file()


def test_every_option_of_every_command_has_help_with_default_and_variable() -> None:
    parser = build_parser()
    missing: list[str] = []
    for path, sub, action in walk(parser):
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        name = f"kyukyu {' '.join(path)} {max(action.option_strings, key=len, default=action.dest)}"
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(name)
            continue
        if not action.option_strings:
            continue  # a positional: its help says what it is
        formatter = sub._get_formatter()
        shown = formatter._expand_help(action) if hasattr(formatter, "_expand_help") else ""
        shown = " ".join(shown.split())
        var = env_name(path, action)
        if "default" not in shown.lower():
            missing.append(f"{name}: no default shown")
        if var is not None and var not in shown:
            missing.append(f"{name}: {var} not shown")
    assert missing == []
