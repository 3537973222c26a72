"""The keys a running service opens cases with, kept current with its key file.

``kyukyu hospital keys rotate`` replaces ``hospital-key.json`` atomically (a new 0600
file renamed over it) while ``kyukyu hospital serve`` may be running. ``LiveKeys`` holds
the keys the service loaded and takes the new file without a restart:

- ``refresh()`` looks at the file's identity (``os.stat``: inode, size, mtime, ctime;
  one system call) and reads it again only when it changed. The service calls it when
  a case needs a key kind it does not hold (a v2 case before the X-Wing key was read),
  and every ``key_check_seconds`` from a thread of its own; never per case otherwise.
- A file is taken only when it loads (0600, well-formed, every key valid) and keeps
  every key held: the one change taken is an X-Wing key added (a rotation adds it and
  never replaces a key: v1 and v2 cases in flight, the platform's record of the signing
  key and the cases stored here depend on the keys held). Otherwise the keys held stay
  in use and ``problem`` says why (logged once per file, in English, never a key byte;
  shown on the dashboard).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hospital.errors import KeyFileOpenToOthers, NotInitialised
from hospital.identity import HospitalKeys, _raw_private
from sync.seal import OpeningKeys

__all__ = ["KeyFileProblem", "LiveKeys"]

log = logging.getLogger("hospital.keys")

_Signature = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class KeyFileProblem:
    """Why the key file on disk is not in use (the keys held before still are)."""

    code: str
    message_en: str
    message_ja: str


_UNREADABLE = KeyFileProblem(
    "key_file_unreadable",
    "the key file could not be read or is not a valid key file",
    "鍵ファイルを読めません（壊れているか形式が違います）。受信は以前の鍵で続けています。"
    "システム管理者に連絡してください。",
)
_MISSING = KeyFileProblem(
    "key_file_missing",
    "the key file is gone",
    "鍵ファイルが見つかりません。受信は以前の鍵で続けています。システム管理者に連絡してください。",
)
_OPEN_TO_OTHERS = KeyFileProblem(
    "key_file_mode",
    "the key file is readable by others (chmod 600)",
    "鍵ファイルが他のユーザーから読める設定です（chmod 600）。受信は以前の鍵で続けています。"
    "システム管理者に連絡してください。",
)
_OTHER_KEYS = KeyFileProblem(
    "key_file_other_keys",
    "the key file holds other keys than the running service (a rotation only adds the X-Wing key)",
    "鍵ファイルの鍵が稼働中のものと異なります（鍵の更新で増えるのは耐量子鍵だけです）。"
    "受信は以前の鍵で続けています。"
    "システム管理者に連絡してください。",
)


def _same_fixed_keys(a: HospitalKeys, b: HospitalKeys) -> bool:
    return (
        _raw_private(a.hpke) == _raw_private(b.hpke)
        and _raw_private(a.signing) == _raw_private(b.signing)
        and a.storage == b.storage
    )


def _signature(path: Path) -> _Signature:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class LiveKeys:
    """The service's current keys and the key file they come from (thread-safe)."""

    def __init__(
        self, path: Path, keys: HospitalKeys, *, on_change: Callable[[], None] | None = None
    ) -> None:
        """``on_change``: called (outside the lock) when new keys were taken or
        ``problem`` changed."""
        self.path = path
        self._on_change = on_change or (lambda: None)
        self._lock = threading.Lock()
        self._keys = keys
        self.problem: KeyFileProblem | None = None
        try:
            self._seen: _Signature | None = _signature(path)
        except OSError:
            self._seen = None

    @property
    def keys(self) -> HospitalKeys:
        """The keys in use (no look at the file)."""
        return self._keys

    def opening_keys(self) -> OpeningKeys:
        return self._keys.opening_keys()

    def kinds(self) -> tuple[str, ...]:
        keys = self._keys
        return ("x25519", "xwing") if keys.xwing is not None else ("x25519",)

    def refresh(self) -> bool:
        """Read the key file again if it changed since it was last looked at; True when
        new keys were taken. Never raises for the file: a file that cannot be used
        leaves the keys held in use and sets ``problem``."""
        with self._lock:
            problem = self.problem
            changed = self._refresh()
            told = changed or self.problem != problem
        if told:
            self._on_change()
        return changed

    def _refresh(self) -> bool:
        """``refresh`` under the lock."""
        try:
            sig: _Signature | None = _signature(self.path)
        except OSError:
            sig = None
        if sig == self._seen:
            return False
        self._seen = sig
        if sig is None:
            return self._refuse(_MISSING, "missing")
        try:
            fresh = HospitalKeys.load(self.path)
        except NotInitialised as exc:
            problem = _OPEN_TO_OTHERS if isinstance(exc, KeyFileOpenToOthers) else _UNREADABLE
            return self._refuse(problem, exc.detail or exc.code)  # a path and a kind, no bytes
        except Exception as exc:  # JSON, base64, key lengths: the type only, never bytes
            return self._refuse(_UNREADABLE, type(exc).__name__)
        held_xwing = self._keys.xwing_public_b64()
        if not _same_fixed_keys(fresh, self._keys) or (
            held_xwing is not None and fresh.xwing_public_b64() != held_xwing
        ):
            return self._refuse(_OTHER_KEYS, "other keys")
        self.problem = None
        if fresh.xwing is None or held_xwing is not None:
            return False  # the same keys (a file rewritten as it was)
        before = self.kinds()
        self._keys = fresh
        log.info(
            "key file read again: opening %s (was %s)",
            "+".join(self.kinds()),
            "+".join(before),
        )
        return True

    def _refuse(self, problem: KeyFileProblem, why: str) -> bool:
        # Once per replaced file (refresh reads a file once): no repeated lines.
        log.error(
            "key file %s not taken (%s: %s); the service keeps opening cases with the"
            " keys it holds (%s)",
            self.path,
            problem.code,
            why,
            "+".join(self.kinds()),
        )
        self.problem = problem
        return False
