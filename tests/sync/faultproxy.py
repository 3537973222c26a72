"""A fault-injecting TCP proxy on loopback (asyncio, in its own thread).

Each accepted connection gets one fate, drawn with a seeded RNG:

- ``pass``            relayed; the response direction is cut by a TCP reset after a
                      random byte budget (so long keep-alive connections also fail)
- ``drop``            reset at once, nothing read
- ``reset_request``   the first few bytes of the request reach the hub, then reset
- ``reset_response``  the request reaches the hub whole, the answer is cut mid-way
- ``error``           a canned ``500`` or ``503`` with ``Retry-After``, hub never sees it
- ``delay``           a pause before connecting, then ``pass``
- ``slow``            the answer trickles back in 16-byte pieces
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter

MODES = {
    "pass": 0.40,
    "drop": 0.08,
    "reset_request": 0.10,
    "reset_response": 0.14,
    "error": 0.12,
    "delay": 0.08,
    "slow": 0.08,
}


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        seed: int = 0,
        modes: dict[str, float] | None = None,
        response_budget: tuple[int, int] = (300, 3_000),
    ):
        self.upstream_port = upstream_port
        self.response_budget = response_budget
        self.rng = random.Random(seed)
        self.modes = modes or MODES
        self.counts: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> int:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = fut.result(10)
        return self.port

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.rng.choices(list(self.modes), weights=list(self.modes.values()))[0]
        self.counts[mode] += 1
        try:
            await self._run(mode, reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            _reset(writer)  # a cancelled handler (proxy stopping) ends quietly too

    async def _run(
        self, mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if mode == "drop":
            _reset(writer)
            return
        if mode == "error":
            await reader.readuntil(b"\r\n\r\n")
            status = self.rng.choice(["500 Internal Server Error", "503 Service Unavailable"])
            writer.write(
                f"HTTP/1.1 {status}\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            writer.close()
            return
        if mode == "delay":
            await asyncio.sleep(self.rng.uniform(0.0, 0.15))
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        request_budget: int | None = None
        response_budget: int | None = self.rng.randint(*self.response_budget)
        chunk = 65536
        pause = 0.0
        if mode == "reset_request":
            request_budget = self.rng.randint(1, 1500)
        elif mode == "reset_response":
            response_budget = self.rng.randint(1, 400)
        elif mode == "slow":
            chunk, pause = 16, 0.001

        async def pipe(
            src: asyncio.StreamReader,
            dst: asyncio.StreamWriter,
            budget: int | None,
            size: int,
            delay: float,
        ) -> None:
            try:
                while True:
                    data = await src.read(size)
                    if not data:
                        break
                    if budget is not None:
                        if len(data) >= budget:
                            dst.write(data[:budget])
                            await dst.drain()
                            _reset(writer)
                            up_writer.transport.abort()
                            return
                        budget -= len(data)
                    dst.write(data)
                    await dst.drain()
                    if delay:
                        await asyncio.sleep(delay)
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    dst.close()

        await asyncio.gather(
            pipe(reader, up_writer, request_budget, 65536, 0.0),
            pipe(up_reader, writer, response_budget, chunk, pause),
        )
