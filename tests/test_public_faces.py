"""Each package's public face: one sorted ``__all__`` that resolves, and nobody outside a
package (or its own tests) imports the package's private modules."""

from __future__ import annotations

import functools
import importlib

import pytest

from tests.test_layering import ROOT, imports_of

# package -> its own tests (white-box tests may reach inside): every package of the project.
PACKAGES: dict[str, tuple[str, ...]] = {
    "errbase": (),
    "edge": (
        "tests/edge",
        "tests/jpki",
        "tests/reader",
        "tests/ui",
        "tests/provision",
        "tests/card_sim",
        "tests/test_demo.py",
    ),
    "edge.card_sim": ("tests/card_sim",),
    "edge.doctor": ("tests/provision",),
    "edge.flow": ("tests/edge", "tests/ui", "tests/test_demo.py"),
    "edge.jpki": ("tests/jpki",),
    "edge.provision": ("tests/provision",),
    "edge.reader": ("tests/reader",),
    "edge.ui": ("tests/ui",),
    "edge.ui.screens": ("tests/ui",),
    "edge.ui.widgets": ("tests/ui",),
    "sync": ("tests/sync",),
    "door": ("tests/hub_server", "tests/hospital"),
    "hub_server": ("tests/hub_server", "tests/hub_medical"),
    "hub_server.api": ("tests/hub_server",),
    "hub_server.api.routes": ("tests/hub_server",),
    "hub_server.core": ("tests/hub_server",),
    "hub_server.core.audit": ("tests/hub_server",),
    "hub_server.core.events": ("tests/hub_server",),
    "hub_server.crud": ("tests/hub_server",),
    "hub_server.crud.identities": ("tests/hub_server",),
    "hub_server.medical": ("tests/hub_medical",),
    "hub_server.schemas": ("tests/hub_server",),
    "hub_server.services": ("tests/hub_server",),
    "hospital": ("tests/hospital",),
    "hospital.web": ("tests/hospital",),
    "kyukyu": ("tests/cli", "tests/test_demo.py"),
    "kyukyu.commands": ("tests/cli",),
    "kyukyu.testing": (),
}
TOPS = ("errbase", "edge", "sync", "door", "hub_server", "hospital", "kyukyu")


def _packages_on_disk() -> set[str]:
    found = set()
    for top in TOPS:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            if "migrations" not in rel.parts:
                found.add(".".join(rel.parts))
    return found


def test_every_package_has_a_recorded_face() -> None:
    """A new package gets its ``__all__`` and its line here (its own tests, if any)."""
    assert set(PACKAGES) == _packages_on_disk()


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def _resolves(package: str, mod: object, name: str) -> bool:
    """An object the package exports, or one of its modules (a package of modules)."""
    if getattr(mod, name, None) is not None:
        return True
    try:
        importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_all_is_sorted_unique_and_resolves(package: str) -> None:
    mod = importlib.import_module(package)
    names = list(mod.__all__)
    assert names, f"{package} exports nothing"
    assert len(names) == len(set(names))
    assert names == sorted(names, key=_isort_style)
    missing = [n for n in names if not _resolves(package, mod, n)]
    assert missing == []
    assert not [n for n in names if n.startswith("_")]


@functools.cache
def _all_imports() -> tuple[tuple[str, frozenset[str]], ...]:
    """Every Python file of the repository (path, what it imports): parsed once."""
    out = []
    for f in sorted(ROOT.rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        if not rel.startswith(".") and "node_modules" not in rel:
            out.append((rel, frozenset(imports_of(f))))
    return tuple(out)


def _private_imports(package: str, own_tests: tuple[str, ...]) -> list[str]:
    folder = package.replace(".", "/") + "/"
    bad = []
    for rel, names in _all_imports():
        if rel.startswith(folder):
            continue
        if any(rel == t or rel.startswith(t + "/") for t in own_tests):
            continue
        for name in sorted(names):
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
