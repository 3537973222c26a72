"""Property tests: arbitrary bytes into the APDU parsers and the channel give typed errors only."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.reader import ApduChannel, CommandApdu, MalformedApdu, ReaderError, ResponseApdu

from .scripted import ScriptedConnection


@given(st.binary(max_size=300))
def test_command_parse_arbitrary(raw: bytes) -> None:
    try:
        cmd = CommandApdu.parse(raw)
    except MalformedApdu:
        return
    # Whatever parses re-encodes to the same bytes (Le 00 = 256).
    assert cmd.to_bytes() == raw


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=255),
    st.none() | st.integers(1, 256),
)
def test_command_round_trip(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None
) -> None:
    cmd = CommandApdu(cla, ins, p1, p2, data, le)
    assert CommandApdu.parse(cmd.to_bytes()) == cmd
    if data and ins in (0x20, 0x24, 0x2C):
        # VERIFY-like bodies never appear in the printable form.
        assert cmd.masked().endswith(
            ("**" * len(data), "**" * len(data) + f" {(le or 0) & 0xFF:02X}")
        )


@given(st.binary(max_size=300))
def test_response_parse_arbitrary(raw: bytes) -> None:
    try:
        resp = ResponseApdu.parse(raw)
    except MalformedApdu:
        assert len(raw) < 2
        return
    assert resp.to_bytes() == raw


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=260), max_size=70), st.binary(min_size=4, max_size=40))
def test_channel_with_arbitrary_card(answers: list[bytes], command: bytes) -> None:
    """A card answering anything: the channel returns a response or raises a ReaderError."""
    queue = list(answers)

    def answer(_apdu: bytes) -> bytes:
        return queue.pop(0) if queue else b"\x61\x01"

    ch = ApduChannel(ScriptedConnection(answer))
    try:
        cmd = CommandApdu.parse(command)
    except MalformedApdu:
        return
    outcome: object
    try:
        outcome = ch.send(cmd)
    except ReaderError as exc:
        outcome = exc
    if isinstance(outcome, ReaderError):
        assert outcome.to_dict()["code"]
    else:
        assert isinstance(outcome, ResponseApdu)
        assert outcome.sw == 0x9000
