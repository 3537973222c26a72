"""Start pcscd with the vpcd virtual reader when it is not running (demo, tests)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_HOST = "127.0.0.1"
VPCD_PORTS = (35963, 35964)


class PcscdUnavailable(RuntimeError):
    """pcscd or vsmartcard-vpcd is missing or did not start."""


def vpcd_ready() -> bool:
    """pcscd answers and lists the vpcd virtual reader.

    Connecting to vpcd's TCP port is no probe: vpcd takes any connection for a
    card, and after a card leaves it listens again only at its next poll.
    """
    try:
        from smartcard import scard
    except ImportError as exc:
        raise PcscdUnavailable("pyscard is not installed: run scripts/bootstrap") from exc
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != 0:
        return False
    try:
        hresult, names = scard.SCardListReaders(ctx, [])
        return hresult == 0 and any(str(n).startswith("Virtual PCD") for n in names)
    finally:
        scard.SCardReleaseContext(ctx)


def ensure_pcscd(log: Path | None = None, timeout: float = 15.0) -> subprocess.Popen[bytes] | None:
    """Make sure a pcscd with vpcd listens on 127.0.0.1:35963.

    Returns the process when this call started it, else None. The daemon is left
    running afterwards, as a system pcscd would be: other programs on the machine
    (a second demo, a test run, OpenSC) may be using it.
    """
    if vpcd_ready():
        return None
    if shutil.which("pcscd") is None:
        raise PcscdUnavailable("pcscd is not installed: run scripts/bootstrap")
    if not VPCD_DRIVER.exists():
        raise PcscdUnavailable("vsmartcard-vpcd is not installed: run scripts/bootstrap")
    # No pcscd, or one without the vpcd reader: (re)start it.
    subprocess.run(["pkill", "-x", "pcscd"], check=False)
    time.sleep(0.2)
    with contextlib.suppress(FileNotFoundError):
        Path("/run/pcscd/pcscd.comm").unlink()
    out = subprocess.DEVNULL if log is None else log.open("wb")
    # Its own session: it outlives the program that started it (and its Ctrl-C).
    proc = subprocess.Popen(
        ["pcscd", "--foreground"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    while not vpcd_ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise PcscdUnavailable("pcscd did not start with the vpcd reader")
        time.sleep(0.05)
    return proc
