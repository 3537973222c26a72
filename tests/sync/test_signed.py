"""sync.signed: RFC 8785 bytes, signed documents, the one base64 decoder."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import BadHubSignature, ResponseError
from sync.signed import (
    InvalidBase64,
    b64d,
    b64d_std,
    b64e,
    b64e_std,
    canonical_json,
    signed_document,
    verify_document,
)

KEY = Ed25519PrivateKey.generate()


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1.0, "a": 5e-05, "c": [1e21, -0.0]}) == (
        b'{"a":0.00005,"b":1,"c":[1e+21,0]}'
    )
    for bad in (math.nan, math.inf, 2**60):
        with pytest.raises(ValueError, match="not canonicalisable"):
            canonical_json({"x": bad})


_FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
# Every character either alphabet knows, padding, whitespace and a non-ASCII one.
_B64ISH = st.text(alphabet="AQYZgw09+/-_=\n \t\u00e9", max_size=16)


def _std_oracle(text: str) -> bytes | None:
    """The standard library's strict reading: validated, and the one spelling of its bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def _url_oracle(text: str) -> bytes | None:
    """base64url without padding: its alphabet only, and the one spelling of its bytes."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if base64.urlsafe_b64encode(raw).decode().rstrip("=") == text else None


def _ours(decode: Callable[[str], bytes], text: str) -> bytes | None:
    try:
        return decode(text)
    except InvalidBase64:
        return None


@_FUZZ
@given(st.binary(max_size=80))
def test_each_encoder_is_read_back_by_its_decoder(data: bytes) -> None:
    assert b64d(b64e(data)) == data
    assert b64d_std(b64e_std(data)) == data
    assert b64e_std(data) == base64.b64encode(data).decode()
    assert b64e(data) == base64.urlsafe_b64encode(data).decode().rstrip("=")


@_FUZZ
@given(st.one_of(_B64ISH, st.text(max_size=12), st.binary(max_size=12).map(b64e)))
def test_b64d_accepts_exactly_what_strict_base64url_accepts(text: str) -> None:
    assert _ours(b64d, text) == _url_oracle(text)


@_FUZZ
@given(st.one_of(_B64ISH, st.text(max_size=12), st.binary(max_size=12).map(b64e_std)))
def test_b64d_std_accepts_exactly_what_strict_base64_accepts(text: str) -> None:
    assert _ours(b64d_std, text) == _std_oracle(text)


@pytest.mark.parametrize(
    "bad",
    ["a", "ab$c", "ab=c", "abc===", "ａｂｃｄ", "YQ=\x00", "+-/_", "YQ==", "YR", " YQ", "Y Q"],
)
def test_b64d_refuses_anything_but_base64url(bad: str) -> None:
    with pytest.raises(InvalidBase64, match="base64"):
        b64d(bad)
    assert issubclass(InvalidBase64, ValueError)  # what every caller already catches


@pytest.mark.parametrize(
    "bad", ["YQ", "YQ=", "YR==", "-_-_", "Zm9v\n", "Zm9v YQ==", "QQ===", b"QQ=="]
)
def test_b64d_std_refuses_anything_but_padded_standard_base64(bad: str) -> None:
    with pytest.raises(InvalidBase64, match="base64"):
        b64d_std(bad)


def test_signed_document_round_trip_and_tamper() -> None:
    doc = signed_document("directory", {"n": 1.5, "name": "病院\u2028"}, KEY, "hub:k")
    assert verify_document(doc, "directory", KEY.public_key()) == doc["directory"]
    for broken in (
        {**doc, "directory": {**doc["directory"], "n": 2}},
        {
            **doc,
            "signature": b64e(bytes([b64d(doc["signature"])[0] ^ 1]) + b64d(doc["signature"])[1:]),
        },
        {"directory": doc["directory"]},
        {**doc, "directory": "x"},
    ):
        with pytest.raises(BadHubSignature):
            verify_document(broken, "directory", KEY.public_key())
    assert issubclass(BadHubSignature, ResponseError)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BadHubSignature):
        verify_document(doc, "directory", other)
