"""Scripted and recording cards for protocol tests (python-fido2 style: exact bytes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from edge.reader import ApduChannel, CardHandler, CardRemoved, LoopbackConnection

ATR = bytes.fromhex("3BE000FF8131FE4514")


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


class ScriptedCard:
    """Answers a fixed script of ``(expected command hex, response)``; asserts every byte sent.

    A response is bytes, or ``CardRemoved`` to play the card leaving the field.
    """

    def __init__(self, script: Sequence[tuple[str, bytes | type[CardRemoved]]]) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []

    def power_on(self) -> bytes:
        return ATR

    def process(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        assert self.script, f"unexpected extra APDU {apdu.hex().upper()}"
        expected, answer = self.script.pop(0)
        assert apdu.hex().upper() == expected.replace(" ", "").upper(), (
            f"sent {apdu.hex().upper()}, script expected {expected}"
        )
        if isinstance(answer, type):
            raise answer("scripted removal")
        return answer

    def done(self) -> bool:
        return not self.script


def scripted(
    script: Sequence[tuple[str, bytes | type[CardRemoved]]],
) -> tuple[ApduChannel, ScriptedCard]:
    card = ScriptedCard(script)
    return ApduChannel(LoopbackConnection(card)), card


class RecordingCard:
    """Wraps a real ``CardHandler`` (the virtual card) and records every command APDU."""

    def __init__(self, inner: CardHandler, on_apdu: Callable[[bytes], None] | None = None) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self.on_apdu = on_apdu

    def power_on(self) -> bytes:
        return self.inner.power_on()

    def process(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        if self.on_apdu is not None:
            self.on_apdu(apdu)
        return self.inner.process(apdu)


OK = h("9000")
SELECT_JPKI = "00A4040C0AD392F000260100000001"
SELECT_TEXT = "00A4040C0AD3921000310001010408"


def select_ef(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def read(offset: int, le: int) -> str:
    return f"00B0{offset:04X}{le & 0xFF:02X}"


class TamperingCard(RecordingCard):
    """A recording card whose answers pass through ``tamper(command, response)``."""

    def __init__(self, inner: CardHandler, tamper: Callable[[bytes, bytes], bytes]) -> None:
        super().__init__(inner)
        self.tamper = tamper

    def process(self, apdu: bytes) -> bytes:
        return self.tamper(bytes(apdu), super().process(apdu))


class NotACard:
    """Some other ISO 7816 card: every application SELECT fails."""

    def power_on(self) -> bytes:
        return bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

    def process(self, apdu: bytes) -> bytes:
        return bytes.fromhex("6A82")


def channel_for(card: CardHandler) -> ApduChannel:
    return ApduChannel(LoopbackConnection(card))


def my_number_apdus(sent: Sequence[bytes]) -> list[str]:
    """Commands that would touch the My Number: text AP EF 0001 / 0014, visual AP EF 0013.

    Also any VERIFY whose data is 12 digits (照合番号A is the 12-digit number).
    """
    bad: list[str] = []
    app = ""
    for a in sent:
        hx = a.hex().upper()
        if hx.startswith("00A4040C0A"):
            app = hx[10:]
        elif hx.startswith("00A4020C02"):
            fid = hx[10:14]
            if (app == SELECT_TEXT[10:] and fid in ("0001", "0014")) or (
                app.endswith("0402") and fid == "0013"
            ):
                bad.append(hx)
        elif hx.startswith(("00B08", "00B09")):  # READ BINARY by short EF id
            bad.append(hx)
        if a[1] == 0x20 and len(a) == 5 + 12:
            bad.append(hx[:10] + "**")
    return bad
