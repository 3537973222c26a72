"""The virtual My Number card: answers APDUs like the card in jpki-card.md."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.reader import CardRemoved, CommandApdu, MalformedApdu

from ._files_table import Application, Ef, build_applications
from ._image import MAX_TRIES, CardImage
from ._rsa import pkcs1_sign_raw

__all__ = ["Quirks", "VirtualCard"]

log = logging.getLogger("edge.card_sim")

_OK = 0x9000


@dataclass
class Quirks:
    """Switchable behaviours of real cards and readers.

    - ``read_chunk``: READ BINARY returns at most this many bytes (short chunks);
    - ``le_correction_at_eof``: asking past the end gives ``6Cxx`` (xx = bytes left)
      instead of the shorter answer;
    - ``chain_61xx``: responses longer than this come in pieces, ``61xx`` + GET RESPONSE;
    - ``link_kbps``: 106, 212 or 424: sleep as long as the bytes take on that link;
    - ``apdu_delay_s``: fixed extra time per APDU (card processing);
    - ``remove_after_apdus``: the card leaves the field on APDU n+1 (once; it works
      again after the next ``insert()`` / power-on).
    """

    read_chunk: int | None = None
    le_correction_at_eof: bool = False
    chain_61xx: int | None = None
    link_kbps: int | None = None
    apdu_delay_s: float = 0.0
    remove_after_apdus: int | None = None

    def __post_init__(self) -> None:
        for name in ("read_chunk", "chain_61xx", "link_kbps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.remove_after_apdus is not None and self.remove_after_apdus < 0:
            raise ValueError("remove_after_apdus must not be negative")
        if self.apdu_delay_s < 0:
            raise ValueError("apdu_delay_s must not be negative")


def _valid_new(counter: str, new: str) -> bool:
    if counter == "sign_password":
        return 6 <= len(new) <= 16 and all(c.isdigit() or "A" <= c <= "Z" for c in new)
    return len(new) == 4 and new.isdigit()


class VirtualCard:
    """A ``CardHandler`` for one ``CardImage``.

    With ``path`` the image is written back (atomically) whenever a retry counter
    or a PIN changes. ``insert()`` / ``remove()`` play the card entering and
    leaving the field; front ends follow them through ``on_presence`` callbacks.
    """

    def __init__(
        self,
        image: CardImage,
        quirks: Quirks | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.image = image
        self._quirks = quirks or Quirks()
        self.path = Path(path) if path is not None else None
        self._apps = build_applications(image)
        self._lock = threading.RLock()
        self._present = True
        self._removal_fired = False
        self._listeners: list[Callable[[bool], None]] = []
        self.apdu_count = 0  # since the last power-on
        self.total_apdus = 0
        self._reset_state()

    # -- presence --------------------------------------------------------------

    @property
    def quirks(self) -> Quirks:
        return self._quirks

    @quirks.setter
    def quirks(self, q: Quirks) -> None:
        with self._lock:
            self._quirks = q
            self._removal_fired = False

    @property
    def present(self) -> bool:
        return self._present

    def on_presence(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(present)`` whenever the card is inserted or removed."""
        self._listeners.append(listener)

    def _set_present(self, present: bool) -> None:
        with self._lock:
            changed = self._present != present
            self._present = present
            self._reset_state()
        if changed:
            for listener in list(self._listeners):
                listener(present)

    def insert(self) -> None:
        """The card enters the field (a tap): fresh state."""
        self._set_present(True)

    def remove(self) -> None:
        """The card leaves the field; further APDUs raise ``CardRemoved``."""
        self._set_present(False)

    # -- CardHandler -----------------------------------------------------------

    def _reset_state(self) -> None:
        self._app: Application | None = None
        self._ef: int | None = None
        self._verified: set[int] = set()
        self._pending = b""
        self.apdu_count = 0

    def power_on(self) -> bytes:
        """Power up / reset: login state cleared. On a removed card this is a new tap."""
        if not self._present:
            self.insert()
        with self._lock:
            self._reset_state()
        return self.image.atr

    @property
    def atr(self) -> bytes:
        return self.image.atr

    def process(self, apdu: bytes) -> bytes:
        with self._lock:
            if not self._present:
                raise CardRemoved("virtual card is not in the field")
            q = self._quirks
            self.apdu_count += 1
            self.total_apdus += 1
            n = q.remove_after_apdus
            fire = n is not None and not self._removal_fired and self.apdu_count > n
            if fire:
                self._removal_fired = True
            else:
                if q.apdu_delay_s:
                    time.sleep(q.apdu_delay_s)
                data, sw = self._dispatch(bytes(apdu))
                data, sw = self._chain(data, sw)
                out = data + sw.to_bytes(2, "big")
                if q.link_kbps:
                    # ISO-DEP framing (PCB, CRC) adds ~4 bytes each way.
                    time.sleep((len(apdu) + len(out) + 8) * 8 / (q.link_kbps * 1000))
                return out
        self.remove()
        raise CardRemoved("virtual card left the field (quirk remove_after_apdus)")

    # -- helpers ---------------------------------------------------------------

    def _chain(self, data: bytes, sw: int) -> tuple[bytes, int]:
        limit = self._quirks.chain_61xx
        if limit and sw == _OK and len(data) > limit:
            self._pending = data[limit:]
            return data[:limit], 0x6100 | (min(len(self._pending), 256) & 0xFF)
        return data, sw

    def _persist(self) -> None:
        if self.path is not None:
            self.image.save(self.path)

    def _dispatch(self, raw: bytes) -> tuple[bytes, int]:
        try:
            cmd = CommandApdu.parse(raw)
        except MalformedApdu:
            return b"", 0x6700
        pending, self._pending = self._pending, b""
        if cmd.cla not in (0x00, 0x80):
            return b"", 0x6E00
        handler = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0x20: self._verify,
            0x24: self._change_reference_data,
            0x2A: self._sign,
        }.get(cmd.ins)
        if cmd.ins == 0xC0:
            return self._get_response(cmd, pending)
        if handler is None:
            return b"", 0x6D00
        return handler(cmd)

    def _get_response(self, cmd: CommandApdu, pending: bytes) -> tuple[bytes, int]:
        if not pending:
            return b"", 0x6985
        le = cmd.le or 256
        if le > len(pending) and len(pending) < 256:
            self._pending = pending
            return b"", 0x6C00 | len(pending)
        limit = min(le, self._quirks.chain_61xx or 256)
        part, rest = pending[:limit], pending[limit:]
        if rest:
            self._pending = rest
            return part, 0x6100 | (min(len(rest), 256) & 0xFF)
        return part, _OK

    def _current(self) -> Ef | None:
        if self._app is None or self._ef is None:
            return None
        return self._app.files.get(self._ef)

    def _select(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.p2 not in (0x00, 0x0C):
            return b"", 0x6A86
        if cmd.p1 == 0x04:
            for app in self._apps:
                if cmd.data == app.aid:
                    # Selecting an application logs out (security state of the DF reset).
                    self._app, self._ef, self._verified = app, None, set()
                    return b"", _OK
            return b"", 0x6A82
        if cmd.p1 == 0x00 and cmd.data in (b"", b"\x3f\x00"):
            # SELECT MF: 6A86 after a cold reset, else 9000 without changing the DF.
            return b"", (0x6A86 if self._app is None else _OK)
        if cmd.p1 == 0x02:
            if len(cmd.data) != 2:
                return b"", 0x6700
            fid = int.from_bytes(cmd.data, "big")
            if self._app is None or fid not in self._app.files:
                return b"", 0x6A82
            self._ef = fid
            return b"", _OK
        return b"", 0x6A86

    def _allowed(self, ef: Ef) -> bool:
        return not ef.needs or bool(ef.needs & self._verified)

    def _read_binary(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.data:
            return b"", 0x6700
        if cmd.p1 & 0x80:
            # Short EF identifier form: P1 = 100x xxxx (SFI), P2 = offset.
            sfi = cmd.p1 & 0x1F
            if self._app is None or sfi not in self._app.files or cmd.p1 & 0x60:
                return b"", 0x6A82
            self._ef = sfi
            offset = cmd.p2
        else:
            offset = (cmd.p1 << 8) | cmd.p2
        ef = self._current()
        if ef is None:
            return b"", 0x6986 if self._app is not None else 0x6A82
        if ef.kind != "bin":
            return b"", 0x6981
        if not self._allowed(ef):
            return b"", 0x6982
        content = ef.data()
        if offset >= len(content):
            return b"", 0x6B00
        le = cmd.le or 256
        left = len(content) - offset
        q = self._quirks
        if le > left and q.le_correction_at_eof:
            return b"", 0x6C00 | left
        n = min(le, left)
        if q.read_chunk:
            n = min(n, q.read_chunk)
        return content[offset : offset + n], _OK

    def _pin_ef(self, cmd: CommandApdu) -> tuple[int, Ef] | int:
        if (cmd.ins == 0x20 and cmd.p1 != 0x00) or cmd.p2 != 0x80:
            return 0x6A86
        ef = self._current()
        if ef is None or ef.kind != "pin" or self._ef is None:
            return 0x6A88 if self._app is not None else 0x6A82
        return self._ef, ef

    def _verify(self, cmd: CommandApdu) -> tuple[bytes, int]:
        got = self._pin_ef(cmd)
        if isinstance(got, int):
            return b"", got
        fid, ef = got
        left = self.image.tries[ef.counter]
        if not cmd.data:
            # Retry query. Also after a correct VERIFY: the host tracks login itself.
            return b"", 0x63C0 | left
        if left <= 0:
            return b"", 0x6984
        if cmd.data == ef.secret().encode("ascii"):
            self._verified.add(fid)
            if left != MAX_TRIES[ef.counter]:
                self.image.tries[ef.counter] = MAX_TRIES[ef.counter]
                self._persist()
            return b"", _OK
        left -= 1
        self.image.tries[ef.counter] = left
        self._verified.discard(fid)
        self._persist()
        return b"", 0x63C0 | left

    def _change_reference_data(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.p1 != 0x01:
            return b"", 0x6A86
        got = self._pin_ef(cmd)
        if isinstance(got, int):
            return b"", got
        fid, ef = got
        if ef.change is None:
            return b"", 0x6985
        if fid not in self._verified or self.image.tries[ef.counter] <= 0:
            return b"", 0x6982
        try:
            new = cmd.data.decode("ascii")
        except UnicodeDecodeError:
            return b"", 0x6A80
        if not _valid_new(ef.counter, new):
            return b"", 0x6A80
        ef.change(new)
        self._persist()
        return b"", _OK

    def _sign(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.cla != 0x80 or cmd.p1 != 0x00:
            return b"", 0x6A86
        if not cmd.data:
            return b"", 0x6700
        app = self._app
        if app is None:
            return b"", 0x6985
        if cmd.p2 == 0x00:
            if app.presence_key is None:
                return b"", 0x6A86
            key = app.presence_key()
        else:
            if cmd.p2 & 0x80 == 0:
                return b"", 0x6A86
            if cmd.p2 != 0x80:
                # P2 = 0x80 | SFI names the key EF (unconfirmed on real cards).
                sfi = cmd.p2 & 0x1F
                if sfi not in app.files:
                    return b"", 0x6A82
                self._ef = sfi
            ef = self._current()
            if ef is None or ef.kind != "key" or ef.key is None:
                return b"", 0x6985
            if not self._allowed(ef):
                return b"", 0x6982
            k = ef.key()
            if k is None:
                return b"", 0x6A82
            key = k
        sig = pkcs1_sign_raw(key, cmd.data)
        if sig is None:
            return b"", 0x6700
        return sig, _OK
