"""The import rules of docs/architecture.md, checked by parsing every import.

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


# The whole table of docs/architecture.md ("The layers"): which layers of the project each
# layer may import (besides itself and the stdlib). Anything else runs back up (or
# sideways) and fails. A file belongs to the longest layer name that prefixes it.
LAYERS: dict[str, frozenset[str]] = {
    "errbase": frozenset(),
    # The settings base: how every role reads its settings (pydantic-settings, the env
    # file, $CREDENTIALS_DIRECTORY, one error line). A layer of its own beside the error
    # base, so that the device, the hub and the hospital share one copy (none of them may
    # import another) while errbase stays stdlib-only for the drivers and the card code.
    "errbase.settings": frozenset({"errbase"}),
    "edge.reader": frozenset({"errbase"}),
    "edge.jpki": frozenset({"edge.reader", "errbase"}),
    "edge.card_sim": frozenset({"edge.reader", "errbase"}),
    # the core
    "edge": frozenset({"edge.reader", "edge.jpki", "sync", "errbase", "errbase.settings"}),
    "edge.ui": frozenset({"edge", "errbase"}),
    "sync": frozenset({"errbase"}),
    # The door both HTTP servers share (body limit, rate-limit middleware, token buckets):
    # the platform and the hospital's direct endpoint, neither importing the other.
    "door": frozenset({"errbase"}),
    "hub_server": frozenset({"sync", "edge.jpki", "errbase", "errbase.settings", "door"}),
    "hospital": frozenset({"sync", "errbase", "errbase.settings", "door"}),
    "kyukyu": frozenset(
        {"edge", "edge.reader", "edge.jpki", "edge.card_sim", "edge.ui", "sync", "hub_server"}
        | {"hospital", "errbase", "errbase.settings", "door"}
    ),
}

# Third-party packages each layer may import (stdlib is always allowed). The column
# "may import" of the table, with the libraries those packages stand on.
THIRD_PARTY: dict[str, frozenset[str]] = {
    "errbase": frozenset(),
    "errbase.settings": frozenset({"pydantic", "pydantic_settings", "dotenv"}),
    "edge.reader": frozenset({"smartcard", "nfc"}),
    "edge.jpki": frozenset({"cryptography"}),
    "edge.card_sim": frozenset({"cryptography", "nfc"}),  # nfc: the udp driver front end
    "edge": frozenset({"cryptography", "pydantic", "pydantic_settings", "dotenv"}),
    "edge.ui": frozenset({"textual", "textual_serve", "rich"}),
    "sync": frozenset({"cryptography", "httpx", "httpx_sse", "rfc8785", "sqlalchemy", "sqlmodel"}),
    "door": frozenset({"starlette", "uvicorn", "httptools", "proxyprotocol", "pythonjsonlogger"}),
    "hub_server": frozenset(
        {"fastapi", "starlette", "pydantic", "pydantic_settings", "sqlmodel", "sqlalchemy"}
        | {
            "alembic",
            "psycopg",
            "anyio",
            "uvicorn",
            "httptools",
            "cryptography",
            "prometheus_client",
            "pythonjsonlogger",
            "proxyprotocol",
        }
    ),
    # The hospital's web app and receiving service: the hospital extra (web framework,
    # database, staff login, the dashboard's templates and live stream, FHIR export over
    # httpx) and what sync stands on; never the device's drivers or screen.
    "hospital": frozenset(
        {"fastapi", "starlette", "pydantic", "pydantic_settings", "dotenv", "anyio"}
        | {"sqlmodel", "sqlalchemy", "alembic", "psycopg", "uvicorn", "cryptography"}
        | {"httpx", "httpx_sse", "rfc8785", "argon2", "pyotp", "multipart", "python_multipart"}
        | {"jinja2", "markupsafe", "sse_starlette"}
    ),
    # The command line and the bench (kyukyu.testing): it starts the roles' servers
    # (uvicorn), the device's kiosk (textual), the virtual card's pcscd and talks HTTP;
    # the web apps themselves are built by hub_server and hospital, not here.
    "kyukyu": frozenset(
        {"cryptography", "httpx", "httpx_sse", "pyotp", "smartcard", "nfc", "uvicorn"}
        | {"textual", "textual_serve", "rich", "sqlmodel", "sqlalchemy", "psycopg"}
        | {"pydantic", "pydantic_settings", "dotenv", "anyio"}
    ),
}
# The technician's commands in the edge core talk to the hub and probe readers directly.
THIRD_PARTY_EXTRA: dict[str, frozenset[str]] = {
    "edge.doctor": frozenset({"httpx", "nfc"}),
    "edge.provision": frozenset({"httpx"}),
}
PROJECT = frozenset({"errbase", "edge", "sync", "door", "hub_server", "hospital", "kyukyu"})


def layer_of(module: str) -> str | None:
    """The layer a module belongs to (``edge.flow`` is the edge core: ``edge``)."""
    best = None
    for name in LAYERS:
        if (module == name or module.startswith(name + ".")) and (
            best is None or len(name) > len(best)
        ):
            best = name
    return best


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _library_files() -> list[tuple[Path, str, str]]:
    out = []
    for top in ("errbase", "edge", "sync", "door", "hub_server", "hospital", "kyukyu"):
        for f in sorted((ROOT / top).rglob("*.py")):
            module = _module_name(f)
            layer = layer_of(module)
            assert layer is not None, module
            out.append((f, module, layer))
    return out


def table_violations() -> list[str]:
    bad = []
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for f, module, layer in _library_files():
        for name in sorted(imports_of(f)):
            top = name.split(".")[0]
            if top in PROJECT:
                target = layer_of(name)
                if target in (None, layer) or target in LAYERS[layer]:
                    continue
                bad.append(f"{module} ({layer}) imports {name} ({target})")
            elif top not in stdlib and layer in THIRD_PARTY:
                allowed = THIRD_PARTY[layer].union(
                    *(v for k, v in THIRD_PARTY_EXTRA.items() if _within(module, k))
                )
                if top not in allowed:
                    bad.append(f"{module} ({layer}) imports third-party {top}")
    return bad


def test_every_import_follows_the_architecture_table() -> None:
    assert table_violations() == []


def test_the_table_says_what_the_architecture_says() -> None:
    assert "edge.jpki" in LAYERS["hub_server"]  # certificate trust, revocation format
    assert "edge.card_sim" not in LAYERS["hub_server"]
    assert LAYERS["edge.ui"] == {"edge", "errbase"}
    assert "textual" in THIRD_PARTY["edge.ui"]
    assert LAYERS["hospital"] == {"sync", "errbase", "errbase.settings", "door"}
    assert LAYERS["door"] == {"errbase"}  # shared by the hub and the hospital, imports neither
    # Every layer has its third-party column; the hospital never drives a reader or a
    # screen, the CLI builds no web app of its own.
    assert set(THIRD_PARTY) == set(LAYERS)
    assert not {"textual", "smartcard", "nfc", "prometheus_client"} & THIRD_PARTY["hospital"]
    assert not {"fastapi", "starlette", "alembic", "argon2"} & THIRD_PARTY["kyukyu"]
    assert LAYERS["edge"] == {"edge.reader", "edge.jpki", "sync", "errbase", "errbase.settings"}
    # The settings base serves the three roles; the drivers and the card code never need it.
    assert LAYERS["errbase.settings"] == {"errbase"}
    assert all("errbase.settings" not in LAYERS[x] for x in ("edge.reader", "edge.jpki", "sync"))
    assert layer_of("errbase.settings") == "errbase.settings"
    assert all("kyukyu" not in allowed for allowed in LAYERS.values())
    assert layer_of("edge.flow._flow") == "edge"
    assert layer_of("edge.ui.app") == "edge.ui"


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("edge/reader/_probe_up.py", "import edge.jpki\n"),
        ("edge/jpki/_probe_up.py", "from edge.flow import CaseFlow\n"),
        ("edge/ui/_probe_up.py", "def f():\n    from edge.reader import pcsc\n"),
        ("edge/ui/_probe_up.py", "import sync\n"),
        ("sync/_probe_up.py", "from hub_server import crud\n"),
        ("hub_server/_probe_up.py", "from edge.card_sim import TestCA\n"),
        ("hospital/_probe_up.py", "import hub_server.main\n"),
        ("errbase/_probe_up.py", "import edge\n"),
        ("errbase/_probe_up.py", "import pydantic_settings\n"),  # the base stays stdlib-only
        ("edge/reader/_probe_up.py", "from errbase.settings import load_settings\n"),
        ("edge/flow/_probe_up.py", "from edge.ui import app\n"),
        ("edge/reader/_probe_up.py", "import httpx\n"),
        ("hospital/_probe_up.py", "import textual\n"),
        ("hospital/_probe_up.py", "def f():\n    from smartcard.System import readers\n"),
        ("kyukyu/_probe_up.py", "from fastapi import FastAPI\n"),
    ],
)
def test_an_import_back_up_fails(module: str, line: str) -> None:
    f = ROOT / module
    assert not f.exists()
    f.write_text(line)
    try:
        found = table_violations()
    finally:
        f.unlink()
    assert any("_probe_up" in v for v in found), found


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
