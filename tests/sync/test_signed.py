"""sync.signed: RFC 8785 bytes, signed documents, the one base64 decoder."""

from __future__ import annotations

import base64
import math

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from sync import BadHubSignature, ResponseError
from sync.signed import b64d, b64e, canonical_json, signed_document, verify_document

KEY = Ed25519PrivateKey.generate()


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1.0, "a": 5e-05, "c": [1e21, -0.0]}) == (
        b'{"a":0.00005,"b":1,"c":[1e+21,0]}'
    )
    for bad in (math.nan, math.inf, 2**60):
        with pytest.raises(ValueError, match="not canonicalisable"):
            canonical_json({"x": bad})


@given(st.binary(max_size=80))
def test_b64d_reads_every_spelling(data: bytes) -> None:
    std = base64.b64encode(data).decode()
    assert b64d(b64e(data)) == data
    assert b64d(std) == data
    assert b64d(std.rstrip("=")) == data
    assert b64d(base64.urlsafe_b64encode(data).decode()) == data
    assert b64d(" \n".join([std[:5], std[5:]])) == data


@given(st.one_of(st.text(alphabet="AB+/-_=\n x", max_size=24), st.text(max_size=12)))
def test_b64d_fast_path_reads_as_the_general_path(text: str) -> None:
    """Whatever b64d answers, through its one-pass path or not, is what the general
    parser (every spelling, whitespace) answers: the same bytes, or both refuse."""
    from sync.signed import _b64d_general

    try:
        general: bytes | None = _b64d_general(text)
    except ValueError:
        general = None
    try:
        got: bytes | None = b64d(text)
    except ValueError:
        got = None
    assert got == general


@pytest.mark.parametrize("bad", ["a", "ab$c", "ab=c", "abc===", "ａｂｃｄ", "YQ=\x00"])
def test_b64d_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        b64d(bad)


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
