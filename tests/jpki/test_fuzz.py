"""Arbitrary card answers and certificate bytes: only typed errors come out."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.jpki import JpkiError, JpkiSession, TextSession
from edge.jpki.trust import TrustStore, verify_auth_certificate
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
