"""What every application session shares: SELECT, READ BINARY by header, VERIFY with the guard."""

from __future__ import annotations

import re

from edge.reader import (
    ApduChannel,
    ApduError,
    AuthMethodBlocked,
    CommandApdu,
    VerificationFailed,
    error_for_sw,
)

from ._constants import (
    CLA,
    INS_READ_BINARY,
    INS_SELECT,
    INS_VERIFY,
    SELECT_BY_DF_NAME,
    SELECT_EF,
    SELECT_NO_FCI,
)
from ._errors import (
    CollationNumberBlocked,
    CollationNumberLastTry,
    LastTryNeedsConfirmation,
    MalformedData,
    NotMyNumberCard,
    PinBlocked,
    PinError,
    PinRequired,
    WrongCollationNumber,
    WrongPin,
)
from ._tlv import header_total_length

__all__ = ["ApplicationSession", "check_pin_format"]

# READ BINARY: P1-P2 is a 15-bit offset; Le up to 256 (encoded 00).
MAX_OFFSET = 0x7FFF
MAX_LE = 256
# VERIFY P2: specific reference data of the currently selected EF.
_VERIFY_P2 = 0x80

_SW_WRONG_OFFSET = 0x6B00
_SW_EOF_WARNING = 0x6282

_PIN_RE = re.compile(r"[0-9]{4}")


def check_pin_format(pin: str, error: type[PinError]) -> bytes:
    """Return the PIN as ASCII bytes, or raise ``error`` before anything is sent."""
    if not isinstance(pin, str) or not _PIN_RE.fullmatch(pin):
        raise error()
    return pin.encode("ascii")


class ApplicationSession:
    """One card application selected by its AID over an ``ApduChannel``."""

    AID: bytes = b""

    def __init__(self, channel: ApduChannel) -> None:
        self.channel = channel
        self._selected = False
        self._verified = False

    # -- selection ---------------------------------------------------------
    def select(self) -> None:
        """SELECT the application by DF name (``00 A4 04 0C``); also logs out.

        Never SELECT MF: cards answer ``6A86`` after a cold reset.
        """
        cmd = CommandApdu(CLA, INS_SELECT, SELECT_BY_DF_NAME, SELECT_NO_FCI, self.AID)
        try:
            self.channel.send(cmd)
        except ApduError as exc:
            raise NotMyNumberCard(f"SELECT AID answered {exc.sw:04X}") from exc
        self._selected = True
        self._verified = False

    def _ensure_selected(self) -> None:
        if not self._selected:
            self.select()

    def _select_ef(self, fid: int) -> None:
        self._ensure_selected()
        self.channel.send(
            CommandApdu(CLA, INS_SELECT, SELECT_EF, SELECT_NO_FCI, fid.to_bytes(2, "big"))
        )

    # -- reading -----------------------------------------------------------
    def _read_binary(self, offset: int, le: int) -> bytes:
        if not 0 <= offset <= MAX_OFFSET:
            raise MalformedData("file larger than the 15-bit READ BINARY offset")
        cmd = CommandApdu(CLA, INS_READ_BINARY, offset >> 8, offset & 0xFF, le=le)
        return self.channel.send(cmd).data

    def _read_fixed(self, fid: int, length: int) -> bytes:
        """Read the first ``length`` bytes of an EF (fewer if the card returns fewer)."""
        self._select_ef(fid)
        buf = b""
        while len(buf) < length:
            chunk = self._read_binary(len(buf), min(MAX_LE, length - len(buf)))
            if not chunk:
                break
            buf += chunk
        return buf[:length]

    def _read_tlv_file(
        self, fid: int, *, expected_tag: int, error: type[MalformedData] = MalformedData
    ) -> bytes:
        """Read one TLV-shaped EF with the fewest READ BINARY commands.

        The first chunk (Le = 256) carries the header, which gives the total
        length; the rest is read in chunks of what remains (at most 256), coping
        with a card that returns fewer bytes than asked. Never "read until 6B00".
        """
        self._select_ef(fid)
        buf = b""
        total: int | None = None
        while total is None or len(buf) < total:
            want = MAX_LE if total is None else min(MAX_LE, total - len(buf))
            try:
                chunk = self._read_binary(len(buf), want)
            except ApduError as exc:
                if exc.sw == _SW_EOF_WARNING and exc.data:
                    chunk = exc.data  # 6282: end of file reached before Le bytes
                elif exc.sw == _SW_WRONG_OFFSET:
                    raise error(f"file ends after {len(buf)} bytes") from exc
                else:
                    raise
            if not chunk:
                raise error(f"file ends after {len(buf)} bytes")
            buf += chunk
            if total is None:
                try:
                    total = header_total_length(buf, expected_tag=expected_tag)
                except MalformedData as exc:
                    raise error(exc.detail) from exc
                if total is not None and total > MAX_OFFSET + 1:
                    raise error("declared length beyond the READ BINARY range")
        return buf[:total]

    # -- verification --------------------------------------------------------
    def _retry_counter(self) -> int:
        """VERIFY with no data (``00 20 00 80``) on the selected EF: ``63Cx`` = x tries."""
        resp = self.channel.transceive(CommandApdu(CLA, INS_VERIFY, 0x00, _VERIFY_P2))
        if resp.sw & 0xFFF0 == 0x63C0:
            return resp.sw & 0x0F
        if resp.sw in (0x6983, 0x6984):
            return 0
        if resp.sw == 0x9000:
            # ISO cards may answer 9000 when already verified: no counter to report,
            # and guessing one would defeat the one-try-left guard.
            raise MalformedData("retry counter query answered 9000")
        raise error_for_sw(resp.sw, b"")

    def _verify(
        self, fid: int, secret: bytes, *, allow_last_try: bool, collation_b: bool = False
    ) -> None:
        """SELECT the PIN EF, read the counter, then VERIFY unless the guard refuses.

        ``collation_b``: the secret is 照合番号B, so its refusals name it (its own
        counter; the paramedic must not read them as the PIN's).
        """
        wrong, blocked, last_try = (
            (WrongCollationNumber, CollationNumberBlocked, CollationNumberLastTry)
            if collation_b
            else (WrongPin, PinBlocked, LastTryNeedsConfirmation)
        )
        self._select_ef(fid)
        tries = self._retry_counter()
        if tries == 0:
            raise blocked()
        if tries == 1 and not allow_last_try:
            raise last_try(1)
        try:
            self.channel.send(CommandApdu(CLA, INS_VERIFY, 0x00, _VERIFY_P2, secret))
        except AuthMethodBlocked as exc:
            raise blocked() from exc
        except VerificationFailed as exc:
            if exc.tries_left == 0:
                raise blocked() from exc
            raise wrong(exc.tries_left) from exc
        self._verified = True

    def _require_verified(self) -> None:
        if not self._verified:
            raise PinRequired("not logged in on this session")
