"""The device's one settings object: file, environment, overrides, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.settings import SettingsError, load_device_settings, settings_file_text


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KYUKYU_EDGE_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def test_file_then_environment_then_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "edge.env"
    cfg.write_text(
        "# comment\nKYUKYU_EDGE_HUB_URL=http://file.example\nKYUKYU_EDGE_THEME=night\n"
        f"KYUKYU_EDGE_DATA_DIR={tmp_path}\n"
    )
    monkeypatch.setenv("KYUKYU_EDGE_HUB_URL", "http://env.example")
    s = load_device_settings(cfg)
    assert s.hub_url == "http://env.example"
    assert s.theme == "night"
    assert s.key_file == tmp_path / "device-key.pem"
    assert not s.enrolled
    s = load_device_settings(cfg, hub_url="http://arg.example")
    assert s.hub_url == "http://arg.example"


def test_booleans_read_as_people_write_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KYUKYU_EDGE_TEST_ROOTS", "True")
    assert load_device_settings(tmp_path / "missing.env").test_roots is True


def test_a_bad_value_is_one_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KYUKYU_EDGE_IDLE_TIMEOUT_S", "soon")
    with pytest.raises(SettingsError) as info:
        load_device_settings(tmp_path / "missing.env")
    assert info.value.code == "settings_invalid"
    assert "KYUKYU_EDGE_IDLE_TIMEOUT_S" in str(info.value)
    assert "soon" in str(info.value)


def test_the_writer_quotes_values_and_keeps_every_other_line(tmp_path: Path) -> None:
    before = (
        "# the technician's notes stay\n"
        "KYUKYU_EDGE_THEME=night # by hand\n"
        "export KYUKYU_EDGE_DEVICE_ID=old\n"
        "KYUKYU_EDGE_READER_NAME=ACS ACR1252\n"
    )
    after = settings_file_text(
        before,
        {
            "hub_url": "https://hub.example/a b#c",
            "device_id": "dev-2",
            "crew_member": "O'Brien \\ 救急",
            "test_roots": True,
            "reader_name": None,  # removed
        },
    )
    assert after.startswith("# the technician's notes stay\nKYUKYU_EDGE_THEME=night # by hand\n")
    assert "KYUKYU_EDGE_READER_NAME" not in after
    assert after.count("KYUKYU_EDGE_DEVICE_ID") == 1
    cfg = tmp_path / "edge.env"
    cfg.write_text(after, encoding="utf-8")
    s = load_device_settings(cfg)
    assert s.hub_url == "https://hub.example/a b#c"
    assert s.device_id == "dev-2"
    assert s.crew_member == "O'Brien \\ 救急"
    assert s.test_roots is True
    assert s.theme == "night"
    assert s.reader_name is None
    # Writing the same values again changes nothing.
    assert settings_file_text(after, {"device_id": "dev-2"}) == after


@pytest.mark.parametrize("values", [{"hub_url": "a\nKYUKYU_EDGE_TEST_ROOTS=1"}, {"nope": "1"}])
def test_the_writer_refuses_line_breaks_and_unknown_settings(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        settings_file_text("", values)
