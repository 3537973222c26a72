"""The unsigned health check tells that the hub answers and nothing else: no stream count
(a hospital connecting must not show on the public port), no version, no load."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.hospital._world import platform, wait_for


def test_health_is_the_same_with_and_without_open_streams(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        before = httpx.get(f"{p.url}/v1/health", timeout=5)
        assert before.status_code == 200
        assert before.json() == {"status": "ok"}

        a = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.start(a)  # its receiver opens the platform's event stream
        wait_for(lambda: p.hub.state.bus.stream_count == 1, what="the hospital's stream")
        device = p.new_device()
        stop, opened = threading.Event(), threading.Event()

        def stream() -> None:
            for _ in device.client.device_events(0, stop, on_keepalive=opened.set):
                pass

        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        assert opened.wait(10)
        assert p.hub.state.bus.stream_count == 2
        after = httpx.get(f"{p.url}/v1/health", timeout=5)
        assert after.status_code == 200
        assert after.content == before.content  # byte for byte: nothing moved
        stop.set()
        reader.join(5)
