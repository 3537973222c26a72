"""The device's one settings object: file, environment, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.settings import SettingsError, load_device_settings


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
