"""Cold start: what the standby screen does not need is not loaded before it.

The device's first screen must show within 3 s on a Pi-class CPU (benchmarks/
edge_flow.py, ``pi_class``); importing httpx and building its client cost ~0.15 s of
CPU at full speed (0.6 s at 25 % of one core), so they wait for the first request.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
