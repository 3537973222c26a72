"""The hub's rooms: thin routes, imported by the app factory only; crud without HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_layering import ROOT, imports_of

ROUTES = ROOT / "hub_server" / "api" / "routes"


def test_no_route_module_over_150_lines() -> None:
    long = {
        f.name: n
        for f in sorted(ROUTES.glob("*.py"))
        if (n := len(f.read_text(encoding="utf-8").splitlines())) > 150
    }
    assert long == {}


def _importers_of_routes(folder: Path) -> list[str]:
    out = []
    for f in sorted(folder.rglob("*.py")):
        if f.parent == ROUTES or f == ROOT / "hub_server" / "main.py":
            continue
        for name in imports_of(f):
            if name == "hub_server.api.routes" or name.startswith("hub_server.api.routes."):
                out.append(f"{f.relative_to(ROOT)} imports {name}")
    return out


@pytest.mark.parametrize(
    "folder", ["hub_server", "kyukyu", "edge", "sync", "hospital", "benchmarks", "tests"]
)
def test_only_the_app_factory_imports_route_modules(folder: str) -> None:
    assert _importers_of_routes(ROOT / folder) == []


def test_crud_and_services_speak_no_http() -> None:
    http = ("fastapi", "starlette", "hub_server.api")
    bad = [
        f"{f.relative_to(ROOT)} imports {name}"
        for folder in ("crud", "services")
        for f in sorted((ROOT / "hub_server" / folder).rglob("*.py"))
        for name in imports_of(f)
        if any(name == x or name.startswith(x + ".") for x in http)
    ]
    assert bad == []
