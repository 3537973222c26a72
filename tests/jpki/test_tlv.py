"""BER-TLV and DER-header parsers: exact cases and arbitrary bytes (only typed errors)."""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.jpki import MalformedData, encode_tlv, header_total_length, parse_tlv, parse_tlvs
from edge.jpki._text import parse_attributes, parse_integrity


def test_short_and_long_form_lengths() -> None:
    for n in (0, 1, 127, 128, 255, 256, 1000, 70000):
        raw = encode_tlv(0xDF22, b"x" * n)
        tlv, end = parse_tlv(raw)
        assert (tlv.tag, len(tlv.value), end) == (0xDF22, n, len(raw))
        assert header_total_length(raw[:8]) == len(raw)


def test_known_encodings() -> None:
    assert encode_tlv(0xDF22, b"ab") == bytes.fromhex("DF22026162")
    assert encode_tlv(0xFF20, b"\0" * 200)[:4] == bytes.fromhex("FF2081C8")
    assert encode_tlv(0x30, b"\0" * 0x4B6)[:4] == bytes.fromhex("308204B6")


def test_certificate_header() -> None:
    assert header_total_length(bytes.fromhex("308204B6"), expected_tag=0x30) == 0x4B6 + 4
    assert header_total_length(bytes.fromhex("3082"), expected_tag=0x30) is None
    assert header_total_length(b"", expected_tag=0x30) is None
    with pytest.raises(MalformedData):
        header_total_length(bytes.fromhex("318204B6"), expected_tag=0x30)
    with pytest.raises(MalformedData):
        header_total_length(bytes.fromhex("3080"), expected_tag=0x30)  # indefinite
    with pytest.raises(MalformedData):
        header_total_length(bytes.fromhex("3085FFFFFFFFFF"), expected_tag=0x30)


def test_nested_and_errors() -> None:
    inner = encode_tlv(0xDF21, b"\x00\x0b") + encode_tlv(0xDF25, b"1")
    outer = encode_tlv(0xFF20, inner)
    tlv, _ = parse_tlv(outer)
    assert tlv.constructed
    assert [t.tag for t in tlv.children()] == [0xDF21, 0xDF25]
    assert "31" not in repr(tlv)  # values are never printed
    with pytest.raises(MalformedData):
        parse_tlvs(outer[:-1])
    with pytest.raises(MalformedData):
        parse_tlv(bytes.fromhex("DF"))
    with pytest.raises(MalformedData):
        parse_tlv(bytes.fromhex("DFFFFFFF0100"))  # tag longer than 4 bytes
    with pytest.raises(MalformedData):
        parse_tlvs(bytes.fromhex("DF2205616263"))  # value shorter than its length


@given(st.binary(max_size=300))
def test_parse_tlvs_only_typed_errors(data: bytes) -> None:
    try:
        for t in parse_tlvs(data):
            assert isinstance(t.value, bytes)
    except MalformedData:
        pass


@given(st.binary(max_size=12), st.one_of(st.none(), st.sampled_from([0x30, 0xFF20])))
def test_header_only_typed_errors(data: bytes, tag: int | None) -> None:
    try:
        n = header_total_length(data, expected_tag=tag)
    except MalformedData:
        return
    assert n is None or n >= 2


@given(st.binary(max_size=400))
def test_attribute_and_integrity_parsers_only_typed_errors(data: bytes) -> None:
    for parser in (parse_attributes, parse_integrity):
        with contextlib.suppress(MalformedData):
            parser(data)


@st.composite
def attribute_files(draw: st.DrawFn) -> tuple[bytes, tuple[str, str, str, str]]:
    name = draw(st.text(min_size=1, max_size=200))
    address = draw(st.text(min_size=1, max_size=400))
    birth = draw(st.dates(date(1900, 1, 1), date(2099, 12, 31))).strftime("%Y%m%d")
    sex = draw(st.sampled_from(["1", "2", "9"]))
    fields = [
        encode_tlv(0xDF21, b"\0" * 8),
        encode_tlv(0xDF22, name.encode()),
        encode_tlv(0xDF23, address.encode()),
        encode_tlv(0xDF24, birth.encode()),
        encode_tlv(0xDF25, sex.encode()),
    ]
    return encode_tlv(0xFF20, b"".join(fields)), (name, address, birth, sex)


@given(attribute_files())
def test_attributes_round_trip_long_form(sample: tuple[bytes, tuple[str, str, str, str]]) -> None:
    raw, (name, address, birth, sex) = sample
    a = parse_attributes(raw)
    assert (a.name, a.address, a.birth_date.strftime("%Y%m%d"), a.sex) == (
        name,
        address,
        birth,
        sex,
    )
    assert repr(a) == "Attributes()"  # nothing personal in a repr


@given(attribute_files(), st.data())
def test_corrupted_attributes_only_typed_errors(
    sample: tuple[bytes, tuple[str, str, str, str]], data: st.DataObject
) -> None:
    raw = bytearray(sample[0])
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(MalformedData):
        parse_attributes(bytes(raw[:cut]))


@given(st.binary(max_size=400))
def test_face_record_parser_only_typed_errors(data: bytes) -> None:
    from edge.jpki import parse_face_record

    with contextlib.suppress(MalformedData):
        parse_face_record(data)
