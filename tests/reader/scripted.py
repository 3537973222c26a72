"""A scripted ``Connection``: records the APDUs sent, answers from a list."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class ScriptedConnection:
    transport = "scripted"
    atr = b"\x3b\x00"

    def __init__(self, answers: Iterable[bytes] | Callable[[bytes], bytes]) -> None:
        self.sent: list[bytes] = []
        if callable(answers):
            self._answer = answers
        else:
            queue = list(answers)

            def pop(_apdu: bytes) -> bytes:
                return queue.pop(0) if queue else b"\x90\x00"

            self._answer = pop

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        return self._answer(bytes(apdu))

    def reset(self) -> bytes:
        return self.atr

    def close(self) -> None:
        pass
