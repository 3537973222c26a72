"""Cold start: what the standby screen does not need is not loaded before it.

The device's first screen must show within 3 s on a Pi-class CPU (benchmarks/
edge_flow.py, ``pi_class``); importing httpx and building its client cost ~0.15 s of
CPU at full speed (0.6 s at 25 % of one core), so they wait for the first request.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kyukyu.testing import write_device_settings

HEAVY = ("httpx", "httpx_sse", "httpcore", "h11", "click", "pygments")


def test_edge_entry_point_and_platform_client_load_no_http_stack() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        import kyukyu.cli
        import kyukyu.commands.edge
        import edge.ui
        from edge.ui.screens import StandbyScreen
        from sync.client import PlatformClient

        kyukyu.cli.build_parser()
        client = PlatformClient(
            "http://127.0.0.1:9", key=Ed25519PrivateKey.generate(), device_id="d1"
        )
        loaded = [m for m in {HEAVY!r} if m in sys.modules]
        assert not loaded, f"loaded before the first request: {{loaded}}"
        client.close()
        assert client.http.closed
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# What the standby screen does not need: the card layer and its cryptography, the
# reader stack, the flow itself, and every other stage's screen (they load when the
# flow opens, after the first frame, or when their stage is first shown).
NOT_BEFORE_FIRST_FRAME = (
    "cryptography",
    "smartcard",
    "edge.jpki",
    "edge.reader.pcsc",
    "edge.flow._flow",
    "edge.flow._wiring",
    "sync.fhir_case",
    "sync.outbox",
    "edge.ui.screens.identity",
    "edge.ui.screens.summary",
    "edge.ui.screens.case",
    "edge.ui.screens.pads",
    "edge.ui.screens.hospitals",
    "edge.ui.screens.abort",
)


def test_first_frame_says_starting_loads_no_card_layer_then_invites_a_tap(tmp_path: Path) -> None:
    """``kyukyu edge``'s own app up to its first frame (the flow's opening held): the
    standby screen says 起動中… and takes no tap, nothing of ``NOT_BEFORE_FIRST_FRAME``
    is loaded; once the flow opens the same screen invites the tap."""
    config = write_device_settings(
        tmp_path / "data",
        device_key=Ed25519PrivateKey.generate(),
        hub_public_key=Ed25519PrivateKey.generate().public_key(),
        hub_url="http://127.0.0.1:9",
        device_id="dev-cold",
    )
    code = textwrap.dedent(
        f"""
        import asyncio, sys, threading

        from kyukyu.cli import build_parser
        from kyukyu.commands.edge import build_app

        app = build_app(build_parser().parse_args(["edge", "--config", {str(config)!r}]))
        gate = threading.Event()
        real = app.opener

        def held():
            assert gate.wait(30)
            return real()

        app.opener = held

        def shown():
            return "\\n".join(str(w.render()) for w in app.screen.query("Static"))

        async def main():
            async with app.run_test(size=(100, 30)) as pilot:
                assert await asyncio.to_thread(app.first_frame.wait, 30)
                await pilot.pause()
                loaded = [m for m in {NOT_BEFORE_FIRST_FRAME!r} if m in sys.modules]
                assert not loaded, f"loaded before the first frame: {{loaded}}"
                text = shown()
                assert "起動中" in text, text
                assert "カードをタッチ" not in text, text
                assert app.screen.query_one("#primary").disabled  # カードなしで開始: not yet
                assert not app.ready.is_set() and not app.standby_shown.is_set()
                gate.set()
                assert await asyncio.to_thread(app.ready.wait, 30)
                await pilot.pause()
                text = shown()
                assert "カードをタッチしてください" in text, text
                assert "起動中" not in text, text
                assert not app.screen.query_one("#primary").disabled
                assert app.standby_shown.is_set()
            app.opened_flow.close()

        asyncio.run(main())
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
