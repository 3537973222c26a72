"""Signed requests (sync.signing): the proof every caller gives the hub."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from sync.signing import (
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignatureError,
    check_request,
    public_key_from_b64,
    public_key_to_b64,
    sign_request,
)

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
NOW = 1_800_000_000.0


def _lookup(key_id: str) -> object:
    return KEY.public_key() if key_id == "device:1" else None


def _signed(body: bytes = b"{}", path: str = "/v1/cases?x=1") -> dict[str, str]:
    return sign_request(KEY, "device:1", "POST", path, body, now=NOW)


def test_round_trip() -> None:
    got = check_request(_signed(), "post", "/v1/cases?x=1", b"{}", _lookup, now=NOW + 10)
    assert got.key_id == "device:1"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/cases?x=1", b"{}"),
        ("POST", "/v1/cases?x=2", b"{}"),
        ("POST", "/v1/cases?x=1", b"{ }"),
    ],
)
def test_any_change_breaks_the_signature(method: str, path: str, body: bytes) -> None:
    with pytest.raises(SignatureError) as err:
        check_request(_signed(), method, path, body, _lookup, now=NOW)
    assert err.value.code == "bad_signature"


def test_stale_request_refused() -> None:
    with pytest.raises(SignatureError) as err:
        check_request(_signed(), "POST", "/v1/cases?x=1", b"{}", _lookup, now=NOW + 301)
    assert err.value.code == "stale"


def test_unknown_key_refused() -> None:
    headers = sign_request(OTHER, "device:2", "POST", "/", b"", now=NOW)
    with pytest.raises(SignatureError) as err:
        check_request(headers, "POST", "/", b"", _lookup, now=NOW)
    assert err.value.code == "unknown_key"


def test_signature_by_another_key_refused() -> None:
    headers = sign_request(OTHER, "device:1", "POST", "/", b"", now=NOW)
    with pytest.raises(SignatureError) as err:
        check_request(headers, "POST", "/", b"", _lookup, now=NOW)
    assert err.value.code == "bad_signature"


def test_missing_header_refused() -> None:
    headers = _signed()
    del headers[HEADER_SIGNATURE]
    with pytest.raises(SignatureError) as err:
        check_request(headers, "POST", "/v1/cases?x=1", b"{}", _lookup, now=NOW)
    assert err.value.code == "missing"


def test_public_key_text_round_trip() -> None:
    text = public_key_to_b64(KEY.public_key())
    assert public_key_from_b64(text) == KEY.public_key()
    with pytest.raises(ValueError):
        public_key_from_b64(text[:-4])


@given(st.dictionaries(st.sampled_from(list(_signed())), st.text(max_size=80)))
def test_garbage_headers_give_only_signature_errors(garbage: dict[str, str]) -> None:
    headers = {**_signed(), **garbage}
    headers.setdefault(HEADER_TIMESTAMP, str(int(NOW)))
    with contextlib.suppress(SignatureError):
        check_request(headers, "POST", "/v1/cases?x=1", b"{}", _lookup, now=NOW)
