"""Streams at scale: a stalled reader delays nobody, is closed, and catches up by number.

A real uvicorn on loopback (the in-process ASGI transport has no sockets to fill). Not
timed: the test never measures a duration, it only gives up after generous limits.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_server.core.config import Settings
from hub_server.core.metrics import families
from hub_server.core.security import HubKey
from hub_server.main import build_state, create_app
from kyukyu.testing import serve_in_thread, wait_until_serving
from tests.hub_server._support import Hub, Signer, make_operator

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_hub(tmp_path: Path, roots_dir: Path) -> Iterator[tuple[str, Any]]:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'hub.db'}",
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
        # One loopback address and few keys stand for many devices: no per-caller limits.
        unsigned_rate=1e6,
        unsigned_burst=10**6,
        identity_rate=1e6,
        identity_burst=10**6,
        max_connections_per_client=10**6,
        sse_max_queued=4,
        sse_keepalive_seconds=60,
    )
    state = build_state(settings, hub_key=HubKey.generate())
    app = create_app(settings, state=state)
    with serve_in_thread(app) as url:
        yield url, state
    state.engine.dispose()


def _stalled_stream(url: str, signer: Signer, path: str) -> socket.socket:
    """A stream whose reader takes the response head and then reads nothing more."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up soon
    sock.connect((host, int(port)))
    head = "".join(f"{k}: {v}\r\n" for k, v in signer.headers("GET", path).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
    sock.settimeout(30)
    got = b""
    while b"\r\n\r\n" not in got:
        got += sock.recv(1)
    assert got.startswith(b"HTTP/1.1 200"), got
    return sock


def _read_to_end(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    sock.close()
    return out


def _event_ids(raw: bytes) -> list[int]:
    """Ids of the complete events in a (chunked) SSE byte stream."""
    ids = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"id: ") and b"\ndata: " in block:
                data = block.split(b"\ndata: ", 1)[1]
                if data.endswith(b"}"):
                    ids.append(int(line[4:]))
    return ids


def _scrape(state: Any) -> dict[str, float]:
    from prometheus_client import generate_latest

    out = {}
    for fam in families(generate_latest(state.metrics.registry).decode()):
        for sample in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


async def test_a_stalled_stream_does_not_delay_another_and_catches_up(
    real_hub: tuple[str, Any],
) -> None:
    url, state = real_hub
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        hub = Hub(client=client, state=state, operator=make_operator(state))
        device = await hub.enroll_device()
        stalled_id, stalled = await hub.register_hospital("stalled")
        live_id, live = await hub.register_hospital("live")
        path = "/v1/hospitals/me/events"
        sock = await asyncio.to_thread(_stalled_stream, url, stalled, path)

        cases = 24  # 24 x ~200 KB to the stalled reader: far past every buffer
        got: list[int] = []

        async def read_live() -> None:
            async with client.stream("GET", path, headers=live.headers("GET", path)) as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line.startswith("id: "):
                        got.append(int(line[4:]))
                        if len(got) == cases:
                            return

        reader = asyncio.create_task(read_live())
        while state.bus.stream_count < 2:
            await asyncio.sleep(0.01)
        for i in range(cases):
            r = await hub.post_case(
                device, [stalled_id, live_id], envelope=secrets.token_bytes(150_000)
            )
            assert r.status_code == 201, r.text
            # Each case reaches the live stream while the stalled one has read nothing.
            while len(got) <= i:
                assert not reader.done(), reader
                await asyncio.sleep(0.005)
        await asyncio.wait_for(reader, 60)
        assert got == list(range(1, cases + 1))

        # The stalled stream was closed for falling behind, not buffered without end.
        metrics = _scrape(state)
        assert metrics["kyukyu_hub_streams_closed_total{reason=behind}"] == 1
        raw = await asyncio.to_thread(_read_to_end, sock)  # ends: the server closed it
        seen = _event_ids(raw)
        assert seen == list(range(1, len(seen) + 1))
        assert len(seen) < cases

        # It reconnects after the last event it has and gets the rest, in order.
        last = seen[-1] if seen else 0
        headers = {**stalled.headers("GET", path), "Last-Event-ID": str(last)}
        rest: list[int] = []
        async with client.stream("GET", path, headers=headers) as r:
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    rest.append(int(line[4:]))
                    if rest[-1] == cases:
                        break
        assert rest == list(range(last + 1, cases + 1))


def test_hub_serve_raises_its_open_file_limit(tmp_path: Path, roots_dir: Path) -> None:
    """``kyukyu hub serve`` lifts its soft RLIMIT_NOFILE to the hard limit at start."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    assert hard > low, "the hard limit here leaves nothing to raise"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    proc = subprocess.Popen(
        [sys.executable, "-m", "kyukyu", "hub", "serve", "--db",
         f"sqlite:///{tmp_path / 'hub.db'}", "--port", str(port), "--env", "test",
         "--trust-roots", str(roots_dir), "--allow-test-roots"],
        cwd=ROOT, preexec_fn=lower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        wait_until_serving(
            f"http://127.0.0.1:{port}",
            proc,
            why=lambda: proc.stdout.read().decode(errors="replace") if proc.stdout else "",
        )
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert line.split()[3:5] == [str(hard), str(hard)], line
        r = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
        assert json.loads(r.text)["status"] == "ok"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert f"open files limit raised from {low} to {hard}" in out


@given(
    data=st.dictionaries(st.text(max_size=8), st.text(max_size=40) | st.integers(), max_size=5),
    seqs=st.lists(st.integers(min_value=1, max_value=2**62), min_size=1, max_size=4),
)
def test_an_event_encoded_once_for_its_recipients_reads_as_encoded_for_each(
    data: dict[str, Any], seqs: list[int]
) -> None:
    """format_sse encodes a case's shared data once; the text is the same as before."""
    from hub_server.core.events import PendingEvent, format_sse, sse_json

    for seq in seqs:
        ev = PendingEvent("hospital:h", seq, "case", data)
        body = sse_json(dict(data, seq=seq))
        assert format_sse(ev) == f"id: {seq}\nevent: case\ndata: {body}\n\n".encode()
