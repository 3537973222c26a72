"""Fork-server for the crash test: imports once, then forks one sender per ``go`` line.

Protocol (stdin/stdout, one line each)::

    go        -> "pid N"   a child opens the outbox and drains it to the hub
              -> "exit S"  once the child is gone (killed or finished)
    quit

Forking from this single-threaded process makes each sender start in about a
millisecond, so a ``kill -9`` a few tens of ms later lands while it is sending.
"""

from __future__ import annotations

import os
import ssl
import sys

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync._backoff import Backoff
from sync.client import PlatformClient
from sync.outbox import Outbox
from sync.sender import Sender
from sync.signing import b64d

# Built once before forking: loading a CA bundle per child would take longer than
# most of the children live.
TLS = ssl.create_default_context()


def child(db: str, url: str, device_id: str, key_b64: str) -> None:
    key = Ed25519PrivateKey.from_private_bytes(b64d(key_b64))
    outbox = Outbox(db, backoff=Backoff(base=0.001, cap=0.01, max_retry_after=0.01))
    outbox.wake()
    client = PlatformClient(
        url, key=key, device_id=device_id, timeout=httpx.Timeout(5.0, connect=2.0), verify=TLS
    )
    sender = Sender(outbox, client, concurrency=2, batch=8)
    report = sender.drain(timeout=30)
    os._exit(0 if report.remaining == 0 else 3)


def main() -> None:
    db, url, device_id, key_b64 = sys.argv[1:5]
    # Warm httpx's lazy imports once (the client builds its httpx client, and sync
    # imports httpx, at its first request), so a forked sender is posting within a few ms.
    warm = PlatformClient(url, key=Ed25519PrivateKey.generate(), device_id="warm-up", verify=TLS)
    try:
        warm.fetch_hub_key()
    finally:
        warm.close()
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd != "go":
            continue
        pid = os.fork()
        if pid == 0:
            try:
                child(db, url, device_id, key_b64)
            finally:
                os._exit(4)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


if __name__ == "__main__":
    main()
