"""The import rules of ../shared/docs/architecture.md, checked by parsing every import.

Imports inside functions count too (``ast.walk``): a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names imported by ``path`` (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"{folder} has no Python files"
    for f in files:
        for name in imports_of(f):
            if any(name == x or name.startswith(x + ".") for x in forbidden):
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    return bad


RULES = {
    # edge/jpki: protocol and trust over a Connection; no driver, no UI, no network.
    "edge/jpki": (
        "smartcard",
        "nfc",
        "edge.reader.pcsc",
        "edge.reader._pcsc",
        "edge.reader.nfc",
        "edge.reader._nfc",
        "edge.card_sim",
        "edge.ui",
        "textual",
        "httpx",
        "socket",
        "sync",
        "hub_server",
    ),
    # edge/ui renders state: no APDUs, no drivers, no network.
    "edge/ui": ("smartcard", "nfc", "httpx", "edge.reader"),
    # The hub routes sealed cases as opaque bytes: it can never open one. It may use
    # edge.jpki (certificate trust, the revocation format: one verifier for both ends),
    # never the device's drivers, UI or flow, nor the virtual card (the demo's virtual
    # cards are issued on the demo side, kyukyu.testing).
    "hub_server": (
        "sync.receiver",
        "sync.seal",
        "edge.card_sim",
        "edge.reader",
        "edge.ui",
        "edge.flow",
        "smartcard",
        "nfc",
        "textual",
    ),
    # Transports know nothing about the card's applications.
    "edge/reader": ("edge.jpki", "edge.card_sim", "edge.ui"),
}


@pytest.mark.parametrize("folder", sorted(RULES))
def test_import_rules(folder: str) -> None:
    assert _violations(folder, RULES[folder]) == []


def test_hub_server_uses_edge_jpki_and_nothing_else_of_edge() -> None:
    bad = []
    for f in sorted((ROOT / "hub_server").rglob("*.py")):
        rel = str(f.relative_to(ROOT))
        for name in imports_of(f):
            if name != "edge" and not name.startswith("edge."):
                continue
            if name.startswith("edge.jpki"):
                continue
            bad.append(f"{rel} imports {name}")
    assert bad == []
    certs = imports_of(ROOT / "hub_server" / "core" / "certs.py")
    assert "edge.jpki.trust.verify_auth_certificate" in certs  # the one verifier


@pytest.mark.parametrize("folder", ["errbase", "edge", "sync", "hub_server", "hospital"])
def test_libraries_never_import_the_cli_package(folder: str) -> None:
    assert _violations(folder, ("kyukyu",)) == []


def test_the_error_base_is_a_leaf() -> None:
    project = ("kyukyu", "edge", "sync", "hub_server", "hospital", "benchmarks", "tests")
    assert _violations("errbase", project) == []


def test_the_checker_sees_relative_and_lazy_imports(tmp_path: Path) -> None:
    pkg = ROOT / "edge" / "jpki"
    f = pkg / "_layering_probe.py"
    assert not f.exists()
    probe = "def f():\n    from ..reader import pcsc\n    import smartcard.scard\n"
    f.write_text(probe)
    try:
        names = imports_of(f)
    finally:
        f.unlink()
    assert "edge.reader.pcsc" in names
    assert "smartcard.scard" in names


def test_importing_edge_jpki_pulls_in_no_driver() -> None:
    code = (
        "import sys, edge.jpki, edge.jpki.trust, edge.jpki.read, edge.jpki.revocation\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('smartcard', 'nfc'))\n"
        "bad += [m for m in ('edge.reader.pcsc', 'edge.reader.nfc') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == ""
