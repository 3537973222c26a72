"""ApduChannel: 61xx / 6Cxx handled in one place, typed errors, stats, masked logs."""

from __future__ import annotations

import logging
import threading

import pytest

from edge.reader import (
    ApduChannel,
    ApduError,
    AuthMethodBlocked,
    Cancelled,
    ClaNotSupported,
    CommandApdu,
    ConditionsNotSatisfied,
    FileNotFound,
    IncorrectP1P2,
    InsNotSupported,
    MalformedApdu,
    SecurityStatusNotSatisfied,
    VerificationFailed,
    WrongLength,
    WrongOffset,
    error_for_sw,
)

from .scripted import ScriptedConnection

READ = CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256)


def test_61xx_is_fetched_with_get_response() -> None:
    conn = ScriptedConnection([b"A" * 100 + b"\x61\x9c", b"B" * 156 + b"\x90\x00"])
    ch = ApduChannel(conn)
    r = ch.send(READ)
    assert r.data == b"A" * 100 + b"B" * 156
    assert conn.sent == [bytes.fromhex("00B0000000"), bytes.fromhex("00C000009C")]
    assert ch.stats.apdus == 2
    assert ch.stats.bytes_received == 100 + 2 + 156 + 2


def test_61_00_asks_for_256() -> None:
    conn = ScriptedConnection([b"\x61\x00", b"C" * 256 + b"\x90\x00"])
    assert ApduChannel(conn).send(READ).data == b"C" * 256
    assert conn.sent[1] == bytes.fromhex("00C0000000")


def test_6cxx_resends_with_corrected_le() -> None:
    conn = ScriptedConnection([b"\x6c\x10", b"D" * 16 + b"\x90\x00"])
    r = ApduChannel(conn).send(READ)
    assert r.data == b"D" * 16
    assert conn.sent == [bytes.fromhex("00B0000000"), bytes.fromhex("00B0000010")]


def test_endless_chain_is_malformed() -> None:
    conn = ScriptedConnection(lambda _a: b"\x61\x01")
    with pytest.raises(MalformedApdu):
        ApduChannel(conn).send(READ)
    assert len(conn.sent) <= 65


@pytest.mark.parametrize(
    ("sw", "cls"),
    [
        (0x6700, WrongLength),
        (0x6982, SecurityStatusNotSatisfied),
        (0x6983, AuthMethodBlocked),
        (0x6984, AuthMethodBlocked),
        (0x63C0, AuthMethodBlocked),
        (0x6985, ConditionsNotSatisfied),
        (0x6A82, FileNotFound),
        (0x6A86, IncorrectP1P2),
        (0x6B00, WrongOffset),
        (0x6D00, InsNotSupported),
        (0x6E00, ClaNotSupported),
        (0x63C2, VerificationFailed),
        (0x6F00, ApduError),
    ],
)
def test_every_status_word_is_typed(sw: int, cls: type[ApduError]) -> None:
    conn = ScriptedConnection([sw.to_bytes(2, "big")])
    with pytest.raises(cls) as err:
        ApduChannel(conn).send(READ)
    assert type(err.value) is cls
    assert err.value.sw == sw
    d = err.value.to_dict()
    assert d["code"]
    assert d["message_ja"]
    assert d["message_en"]
    assert type(error_for_sw(sw)) is cls


def test_tries_left_from_63cx() -> None:
    err = error_for_sw(0x63C2)
    assert isinstance(err, VerificationFailed)
    assert err.tries_left == 2


def test_check_false_returns_the_status() -> None:
    conn = ScriptedConnection([b"\x63\xc3"])
    assert ApduChannel(conn).send(READ, check=False).sw == 0x63C3


def test_cancel_before_sending() -> None:
    cancel = threading.Event()
    cancel.set()
    conn = ScriptedConnection([])
    with pytest.raises(Cancelled):
        ApduChannel(conn, cancel=cancel).send(READ)
    assert conn.sent == []


def test_verify_body_masked_in_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.reader.apdu")
    conn = ScriptedConnection([b"\x90\x00", b"SECRETDATA\x90\x00"])
    ch = ApduChannel(conn)
    ch.send(CommandApdu(0x00, 0x20, 0x00, 0x80, b"1234"))
    ch.send(READ)
    text = caplog.text
    assert "1234" not in text
    assert "31323334" not in text
    assert "00200080 04 ********" in text
    # Response data is never logged, only its length and status word.
    assert "SECRETDATA" not in text
    assert "534543524554" not in text
    assert "10 bytes SW=9000" in text
    # CHANGE REFERENCE DATA is masked too.
    caplog.clear()
    conn2 = ScriptedConnection([b"\x90\x00"])
    ApduChannel(conn2).send(CommandApdu(0x00, 0x24, 0x01, 0x80, b"NEWPW1"))
    assert "4E45575057" not in caplog.text
