"""Each package's public face: one sorted ``__all__`` that resolves, and nobody outside a
package (or its own tests) imports the package's private modules."""

from __future__ import annotations

import importlib

import pytest

from tests.test_layering import ROOT, imports_of

# package -> its own tests (white-box tests may reach inside)
PACKAGES = {
    "edge.reader": "tests/reader",
    "edge.jpki": "tests/jpki",
    "edge.card_sim": "tests/card_sim",
    "sync": "tests/sync",
    "hub_server.crud": "tests/hub_server",
    "hub_server.medical": "tests/hub_medical",
    "errbase": None,
    "kyukyu.testing": None,
}


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_all_is_sorted_unique_and_resolves(package: str) -> None:
    mod = importlib.import_module(package)
    names = list(mod.__all__)
    assert names, f"{package} exports nothing"
    assert len(names) == len(set(names))
    assert names == sorted(names, key=_isort_style)
    missing = [n for n in names if getattr(mod, n, None) is None]
    assert missing == []


def _private_imports(package: str, own_tests: str | None) -> list[str]:
    folder = package.replace(".", "/") + "/"
    bad = []
    for f in sorted(ROOT.rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        if rel.startswith((".", folder)) or "node_modules" in rel:
            continue
        if own_tests and rel.startswith(own_tests + "/"):
            continue
        for name in imports_of(f):
            if not name.startswith(package + "."):
                continue
            inner = name[len(package) + 1 :].split(".")
            if any(p.startswith("_") and not p.startswith("__") for p in inner):
                bad.append(f"{rel} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_caller_outside_imports_private_modules(package: str) -> None:
    assert _private_imports(package, PACKAGES[package]) == []


def test_sync_ships_type_information() -> None:
    assert (ROOT / "sync" / "py.typed").is_file()
