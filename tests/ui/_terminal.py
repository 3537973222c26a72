"""A real terminal: tmux on a private server socket, read with capture-pane, driven with
keys and SGR mouse events."""

from __future__ import annotations

import shlex
import subprocess
import time
import unicodedata
import uuid
from pathlib import Path


def cells(text: str) -> int:
    """Terminal cells of ``text`` (wide CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class Tmux:
    def __init__(self, workdir: Path, size: tuple[int, int] = (100, 30)) -> None:
        self.socket = f"kyukyu-ui-{uuid.uuid4().hex[:8]}"
        self.session = "edge"
        self.size = size
        self.workdir = workdir

    def _tmux(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            ["tmux", "-u", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=20,
        )
        return out.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        shell = f"cd {shlex.quote(str(self.workdir))} && env {exports} {shlex.join(command)}"
        w, h = self.size
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(w), "-y", str(h), shell)

    def kill(self) -> None:
        self._tmux("kill-server", check=False)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear; the screen:\n{screen}")

    def key(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def click_text(self, text: str) -> None:
        """A finger on ``text``: an SGR mouse press and release at its middle."""
        time.sleep(0.3)  # a finger needs the screen drawn before it can aim
        lines = self.screen().splitlines()
        for y in reversed(range(len(lines))):  # actions sit low on the screen
            line = lines[y]
            i = line.find(text)
            if i >= 0:
                x = cells(line[:i]) + cells(text) // 2
                self.click(x, y)
                return
        raise AssertionError(f"{text!r} is not on the screen:\n{self.screen()}")

    def click(self, x: int, y: int) -> None:
        for final in ("M", "m"):
            self._tmux("send-keys", "-t", self.session, "-l", f"\x1b[<0;{x + 1};{y + 1}{final}")
            time.sleep(0.05)
