"""The SQLite revocation watch (hub_server.core.revocation_watch) at the edges of its life:
a hub started and stopped cleanly logs no failure, nor does one left serving in a daemon
thread while the interpreter exits; a genuine failure is logged with its cause."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine

from hub_server.core.revocation_watch import RevocationWatch
from tests.hospital._world import platform

ROOT = Path(__file__).resolve().parents[3]


def _watch_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "hub_server.revocation" and r.levelno >= logging.WARNING
    ]


def test_hub_started_and_stopped_cleanly_logs_no_watch_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stop = threading.Event()
    with platform(tmp_path) as p:
        device = p.new_device()
        opened = threading.Event()

        def stream() -> None:
            for _ in device.client.device_events(0, stop, on_keepalive=opened.set):
                pass

        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        assert opened.wait(10)
        assert p.hub.state.bus.stream_count == 1
        time.sleep(3 * p.hub.state.settings.revocation_poll_seconds)  # the watch polls
        stop.set()
        reader.join(5)
    assert not reader.is_alive()
    assert not _watch_records(caplog), [r.getMessage() for r in _watch_records(caplog)]


_LEFT_SERVING = """
import threading, time
# Widen the window the test looks at: this runs after concurrent.futures shut the
# worker threads down at interpreter exit, while the hub's loop still runs.
threading._register_atexit(lambda: time.sleep(1.5))
import logging, sys, tempfile
from pathlib import Path
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from tests.hospital._world import platform
world = platform(Path(tempfile.mkdtemp(dir=sys.argv[1])))  # never left: kept serving
p = world.__enter__()
d = p.new_device()
opened = threading.Event()
def stream():
    for _ in d.client.device_events(0, on_keepalive=opened.set):
        pass
threading.Thread(target=stream, daemon=True).start()
assert opened.wait(10)
print("streams", p.hub.state.bus.stream_count, flush=True)
# Exit with the hub still serving in its daemon thread and the stream open.
"""


def test_hub_left_serving_at_interpreter_exit_logs_no_watch_failure(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", _LEFT_SERVING, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "streams 1" in r.stdout
    assert "revocation watch failed" not in r.stderr, r.stderr


def test_a_genuine_failure_is_logged_with_its_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database without the hub's tables: the poll fails, the watch says why, goes on."""
    caplog.set_level(logging.WARNING, logger="hub_server.revocation")
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    hub = SimpleNamespace(
        engine=engine,
        settings=SimpleNamespace(revocation_poll_seconds=0.02),
        bus=SimpleNamespace(stream_count=1),
    )
    watch = RevocationWatch(hub)  # type: ignore[arg-type]

    async def run_a_while() -> None:
        task = asyncio.create_task(watch.run())
        # Two failed polls, however long a loaded machine takes (the deadline bounds a hang).
        deadline = time.monotonic() + 30
        while len(_watch_records(caplog)) < 2 and time.monotonic() < deadline:
            assert not task.done()
            await asyncio.sleep(0.02)
        assert not task.done()  # it keeps watching
        task.cancel()

    asyncio.run(run_a_while())
    engine.dispose()
    messages = [r.getMessage() for r in _watch_records(caplog)]
    assert len(messages) >= 2
    assert messages[0].startswith("revocation watch failed: OperationalError:")
    assert "no such table" in messages[0]
