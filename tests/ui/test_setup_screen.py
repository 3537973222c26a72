"""A device that cannot start a case still opens its screen (``kyukyu edge``): 未設定 or
設定に誤り with the bad setting named, what to do, and ``kyukyu doctor``'s findings,
one line per check; nothing on it starts a case. Driven by the Textual pilot through
the command's own ``build_app``; ``--check`` keeps the one line and exit 2 for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from textual.widgets import Button

from edge.ui import EdgeApp, Finding, SetupApp
from edge.ui.screens.setup import SetupScreen, finding_line
from kyukyu.cli import build_parser
from kyukyu.commands.edge import build_app
from kyukyu.testing import write_device_settings
from tests._process import run_kyukyu
from tests.ui._pilot import PANEL, screen_text

pytestmark = pytest.mark.anyio

NOT_A_KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"


def _setup_app(config: Path) -> tuple[SetupApp | EdgeApp, list[Finding]]:
    """The command's app: ``SetupApp`` for settings that do not load; ``EdgeApp`` (which
    turns its screen into 設定に誤り when its flow cannot open) for the others."""
    app = build_app(build_parser().parse_args(["edge", "--config", str(config)]))
    seen: list[Finding] = []
    real = app.diagnose
    assert real is not None

    def diagnose() -> Sequence[Finding]:
        got = list(real())
        seen[:] = got
        return got

    app.diagnose = diagnose
    return app, seen


async def _diagnosed(app: SetupApp | EdgeApp) -> str:
    import asyncio

    # The checks run in a thread worker; the event only bounds a hang.
    assert await asyncio.to_thread(app.diagnosed.wait, 60)
    await asyncio.sleep(0)
    return screen_text(app)  # type: ignore[arg-type]


def _no_case_can_start(app: SetupApp | EdgeApp) -> None:
    assert isinstance(app.screen, SetupScreen)
    ids = sorted(b.id or "" for b in app.screen.query(Button))
    assert ids == ["lang", "primary"]  # English, 再診断: nothing opens a case
    if isinstance(app, EdgeApp):
        assert app.opened_flow is None
        assert not app.ready.is_set()
    else:
        assert not hasattr(app, "flow")


async def test_not_enrolled_says_so_with_what_to_do_and_the_doctor_findings(
    tmp_path: Path,
) -> None:
    config = tmp_path / "edge.env"
    config.write_text(f"KYUKYU_EDGE_DATA_DIR={tmp_path / 'data'}\n", encoding="utf-8")
    app, seen = _setup_app(config)
    async with app.run_test(size=PANEL) as pilot:
        text = await _diagnosed(app)
        assert "マイナ救急：未設定" in text
        assert "登録されていません" in text
        assert "事案は開始できません" in text
        assert "技術担当者に連絡してください" in text
        assert "kyukyu doctor" in text
        assert "kyukyu provision enroll" in text
        assert len(seen) > 5  # every check of kyukyu doctor ran
        for f in seen:
            assert finding_line(f, "ja") in text
        assert "不可 enrollment:" in text  # the doctor says it too
        _no_case_can_start(app)
        app.diagnosed.clear()
        await pilot.click("#primary")  # 再診断: the checks run again
        await _diagnosed(app)
        await pilot.click("#lang")
        await pilot.pause()
        assert "Not enrolled" in screen_text(app)  # type: ignore[arg-type]


async def test_a_bad_setting_is_named_with_the_doctor_findings(tmp_path: Path) -> None:
    config = tmp_path / "edge.env"
    config.write_text(
        f"KYUKYU_EDGE_DATA_DIR={tmp_path / 'data'}\nKYUKYU_EDGE_BASE_LAT='north'\n",
        encoding="utf-8",
    )
    app, seen = _setup_app(config)
    async with app.run_test(size=PANEL):
        text = await _diagnosed(app)
        assert "マイナ救急：設定に誤り" in text
        assert "KYUKYU_EDGE_BASE_LAT" in text
        assert "'north'" in text
        assert "技術担当者に連絡してください" in text
        assert [f.id for f in seen] == ["settings"]
        assert finding_line(seen[0], "ja") in text
        assert str(config) in (seen[0].fix_en or "")  # the file given, not /etc/kyukyu/edge.env
        _no_case_can_start(app)


async def test_an_unreadable_device_key_is_a_bad_setting_without_its_content(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    config = write_device_settings(
        data,
        device_key=Ed25519PrivateKey.generate(),
        hub_public_key=Ed25519PrivateKey.generate().public_key(),
        hub_url="http://127.0.0.1:9",
        device_id="dev-test",
    )
    (data / "device-key.pem").write_text(NOT_A_KEY, encoding="utf-8")
    app, seen = _setup_app(config)
    assert isinstance(app, EdgeApp)  # the key is read once the first screen is drawn
    async with app.run_test(size=PANEL):
        text = await _diagnosed(app)
        assert "マイナ救急：設定に誤り" in text
        assert "device key" in text
        assert "c2VjcmV0" not in text
        assert any(f.id == "device_key" and f.status == "fail" for f in seen)
        for f in seen:
            assert finding_line(f, "ja") in text
        _no_case_can_start(app)
        assert app.open_failed is not None
        assert "c2VjcmV0" not in app.open_failed.line


@pytest.mark.parametrize(
    ("file", "needle"),
    [
        ("KYUKYU_EDGE_BASE_LAT='north'\n", "KYUKYU_EDGE_BASE_LAT"),
        ("", "not enrolled"),
    ],
)
def test_check_is_one_line_exit_2_and_the_english_is_said_once(
    tmp_path: Path, file: str, needle: str
) -> None:
    config = tmp_path / "edge.env"
    config.write_text(f"KYUKYU_EDGE_DATA_DIR={tmp_path / 'data'}\n{file}", encoding="utf-8")
    done = run_kyukyu(tmp_path, "edge", "--check", "--config", str(config))
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("kyukyu edge: ")
    assert needle in line
    assert line.count("The device settings are invalid") == 1
    assert line.count("端末の設定に誤りがあります") == 1
