"""Arbitrary card answers and certificate bytes: only typed errors come out."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.jpki import (
    JpkiError,
    JpkiSession,
    MalformedCertificate,
    MalformedData,
    TextSession,
    parse_card_key,
    parse_cvc,
    parse_integrity,
)
from edge.jpki._text import check_attributes_hash
from edge.jpki.trust import TrustStore, verify_auth_certificate, verify_text_ap_issuer
from edge.reader import ReaderError

from .fakes import ATR, channel_for


class FileCard:
    """A card whose every EF holds ``content``, answered ``chunk`` bytes at a time."""

    def __init__(self, content: bytes, chunk: int, sw: bytes) -> None:
        self.content, self.chunk, self.sw = content, chunk, sw

    def power_on(self) -> bytes:
        return ATR

    def process(self, apdu: bytes) -> bytes:
        if apdu[1] != 0xB0:
            return b"\x90\x00"
        offset = (apdu[2] << 8) | apdu[3]
        le = apdu[4] or 256
        if offset >= len(self.content):
            return self.sw
        return self.content[offset : offset + min(le, self.chunk)] + b"\x90\x00"


_sws = st.sampled_from([b"\x6b\x00", b"\x90\x00", b"\x6a\x82", b"\x62\x82", b"\x6f\x00"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda b: b"\x30\x82" + b),
        st.binary(max_size=60).map(lambda b: b"\x30\x82\x01\x00" + b),
    ),
    st.integers(1, 256),
    _sws,
)
def test_certificate_read_from_arbitrary_files(content: bytes, chunk: int, sw: bytes) -> None:
    try:
        der = JpkiSession(channel_for(FileCard(content, chunk, sw))).read_auth_certificate()
    except (JpkiError, ReaderError):
        return
    assert content.startswith(der)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.integers(1, 256), _sws)
def test_token_info_and_attributes_from_arbitrary_files(
    content: bytes, chunk: int, sw: bytes
) -> None:
    with contextlib.suppress(JpkiError, ReaderError):
        JpkiSession(channel_for(FileCard(content, chunk, sw))).token_info()
    text = TextSession(channel_for(FileCard(content, chunk, sw)))
    text._verified = True  # as if unlocked: this test is about parsing what comes back
    with contextlib.suppress(JpkiError, ReaderError):
        text.read_attributes()


@given(st.binary(max_size=300))
def test_verify_arbitrary_certificate_bytes(der: bytes) -> None:
    store = TrustStore([], allow_test_roots=True)
    with contextlib.suppress(JpkiError):
        verify_auth_certificate(der, store)


def _framed(tag: bytes) -> st.SearchStrategy[bytes]:
    """Bytes behind a plausible header, so the fuzzing reaches past the first tag."""
    return st.binary(max_size=700).map(
        lambda b: tag + bytes((0x82, len(b) >> 8, len(b) & 0xFF)) + b
    )


def _nested(outer: bytes, inner: list[bytes]) -> st.SearchStrategy[bytes]:
    """An outer object holding arbitrary objects with the expected inner tags."""
    obj = st.tuples(st.sampled_from(inner), st.binary(max_size=300)).map(
        lambda t: t[0] + bytes((0x82, len(t[1]) >> 8, len(t[1]) & 0xFF)) + t[1]
    )
    return st.lists(obj, max_size=4).map(
        lambda objs: (
            outer
            + bytes((0x82, sum(map(len, objs)) >> 8, sum(map(len, objs)) & 0xFF))
            + b"".join(objs)
        )
    )


_TYPED = (JpkiError, ReaderError)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=700),
        _framed(b"\x7f\x21"),
        _nested(b"\x7f\x21", [b"\x5f\x4e", b"\x5f\x37", b"\x90"]),
    )
)
def test_cvc_parser_gives_only_typed_errors(raw: bytes) -> None:
    """EF 0004: arbitrary bytes parse or raise ``MalformedCertificate``, nothing else."""
    try:
        cvc = parse_cvc(raw)
    except MalformedCertificate:
        return
    with contextlib.suppress(JpkiError):
        verify_text_ap_issuer(cvc, TrustStore([]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=700),
        _framed(b"\xff\x30"),
        _nested(b"\xff\x30", [b"\xdf\x31", b"\xdf\x32", b"\xdf\x33"]),
    ),
    st.binary(max_size=300),
)
def test_integrity_parser_gives_only_typed_errors(raw: bytes, attributes: bytes) -> None:
    """EF 0003 (and the attribute objects it hashes): only ``MalformedData``/``IntegrityError``."""
    try:
        record = parse_integrity(raw)
    except MalformedData:
        return
    with contextlib.suppress(JpkiError):
        check_attributes_hash(attributes, record)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=700), _nested(b"\xff\x50", [b"\xdf\x51", b"\xdf\x52"])))
def test_card_key_parser_gives_only_typed_errors(raw: bytes) -> None:
    with contextlib.suppress(MalformedCertificate):
        parse_card_key(raw)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=700), st.integers(1, 256), _sws)
def test_text_ap_reads_from_arbitrary_files(content: bytes, chunk: int, sw: bytes) -> None:
    text = TextSession(channel_for(FileCard(content, chunk, sw)))
    text._verified = True
    with contextlib.suppress(*_TYPED):
        text.read_issuer_certificate()
    with contextlib.suppress(*_TYPED):
        text.verify_integrity(content)
    with contextlib.suppress(*_TYPED):
        text.read_card_key()
