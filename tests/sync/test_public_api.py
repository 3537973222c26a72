"""The package's public face: one sorted ``__all__``, every name importable."""

from __future__ import annotations

import subprocess
import sys

import sync


def test_all_is_sorted_and_resolves() -> None:
    names = list(sync.__all__)
    upper = [n for n in names if n[0].isupper()]
    lower = [n for n in names if not n[0].isupper()]
    assert upper == sorted(upper)
    assert lower == sorted(lower)
    assert names == upper + lower
    for name in names:
        assert getattr(sync, name) is not None


def test_envelope_import_does_not_load_httpx() -> None:
    code = "import sys, sync.envelope; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_error_has_code_and_messages() -> None:
    from sync import _errors

    for name in _errors.__all__:
        cls = getattr(_errors, name)
        assert cls.code
        assert cls.message_ja
        assert cls.message_en
    codes = [getattr(_errors, n).code for n in _errors.__all__]
    assert len(codes) == len(set(codes))
