"""Enrollment tokens survive being pasted on a command line."""

from __future__ import annotations

import string

from hub_server.core.security import new_token


def test_tokens_are_hex_and_never_look_like_an_option() -> None:
    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    for t in tokens:
        assert len(t) == 64
        assert set(t) <= set(string.hexdigits.lower())
        assert not t.startswith("-")
