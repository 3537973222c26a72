"""Run an ASGI app under uvicorn on a loopback port, in a thread (demo, benchmarks); wait
for a server started in another process."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", **config: Any) -> Iterator[str]:
    """Yield the base URL of ``app`` served by a real uvicorn on a free port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it each answer waits ~40 ms (Nagle vs delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    scheme = "https" if config.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def wait_until_serving(
    url: str,
    proc: subprocess.Popen[Any] | None = None,
    *,
    timeout: float = 60.0,
    path: str = "/v1/health",
    why: Callable[[], str] = lambda: "",
) -> None:
    """Wait until ``url + path`` answers 200; ``RuntimeError`` (with ``why()``, e.g. the
    tail of the server's log) if ``proc`` exits first or ``timeout`` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not start: {why()}")
        time.sleep(0.2)
