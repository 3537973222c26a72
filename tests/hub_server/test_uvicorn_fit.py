"""``GuardedHttpToolsProtocol`` still fits the installed uvicorn.

The door's server (``door.server``: the hub's and the hospital's direct endpoint's)
subclasses uvicorn's private
``HttpToolsProtocol``, re-implements its ``data_received`` (as ``_feed``) and calls
private methods of it. ``pyproject.toml`` bounds uvicorn above; these tests fail
loudly, naming what moved, when the installed uvicorn no longer matches what the
subclass was written against. Raise the bound only after reading the new
``data_received`` and mending ``_feed``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import inspect
import textwrap
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from door.server import GuardedHttpToolsProtocol

ROOT = Path(__file__).resolve().parents[2]
# sha256 of ast.dump() of uvicorn's HttpToolsProtocol.data_received, the code that
# GuardedHttpToolsProtocol._feed mirrors, as read in uvicorn 0.55.0.
UPSTREAM_DATA_RECEIVED = "acbe954a13ed656624f68f3fbf39b03627df1c0a4e412b1f396e4685c994ba28"


def _uvicorn_bound() -> Requirement:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in meta["project"]["optional-dependencies"]["hub"]]
    (uvicorn,) = [r for r in reqs if r.name == "uvicorn"]
    return uvicorn


def _digest(func: object) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))  # type: ignore[arg-type]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def test_the_installed_uvicorn_is_within_the_declared_bound() -> None:
    bound = _uvicorn_bound()
    installed = Version(importlib.metadata.version("uvicorn"))
    assert any(s.operator == "<" for s in bound.specifier), f"{bound}: no upper bound"
    assert bound.specifier.contains(installed), f"uvicorn {installed} is outside {bound}"


def test_upstream_data_received_is_the_one_feed_mirrors() -> None:
    digest = _digest(HttpToolsProtocol.data_received)
    assert digest == UPSTREAM_DATA_RECEIVED, (
        "uvicorn's HttpToolsProtocol.data_received changed "
        f"(uvicorn {importlib.metadata.version('uvicorn')}): read it and mend "
        "GuardedHttpToolsProtocol._feed in door/server.py, then pin the new digest "
        f"{digest}"
    )


def _self_names(cls: type) -> set[str]:
    """Every ``self.X`` and ``super().X`` the class's own source uses."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Call):  # super().X
            base = base.func
            if isinstance(base, ast.Name) and base.id == "super":
                names.add(node.attr)
        elif isinstance(base, ast.Name) and base.id == "self":
            names.add(node.attr)
    return names


def _upstream_names() -> set[str]:
    """What uvicorn's protocol has: class attributes and what its methods assign to self."""
    names = {n for c in HttpToolsProtocol.__mro__ for n in vars(c)}
    for c in HttpToolsProtocol.__mro__:
        if c.__module__.startswith("uvicorn"):
            names |= _self_names(c)
    return names


def test_every_inherited_name_the_subclass_uses_still_exists() -> None:
    ours = set(vars(GuardedHttpToolsProtocol))
    inherited = _self_names(GuardedHttpToolsProtocol) - ours
    # The subclass's own instance state, set in its __init__.
    init = ast.parse(textwrap.dedent(inspect.getsource(GuardedHttpToolsProtocol.__init__)))
    own_state = {
        t.attr
        for node in ast.walk(init)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Attribute)
    }
    missing = sorted(inherited - own_state - _upstream_names())
    assert missing == [], f"uvicorn's HttpToolsProtocol no longer has: {missing}"
    # The private ones the subclass leans on are among those checked.
    assert {"_unset_keepalive_if_required", "_should_upgrade", "parser", "cycle"} <= inherited


class _Probe(HttpToolsProtocol):
    def gone(self) -> None:
        self._a_private_method_uvicorn_never_had()  # type: ignore[attr-defined]


def test_the_check_sees_a_name_uvicorn_lacks() -> None:
    assert _self_names(_Probe) - _upstream_names() == {"_a_private_method_uvicorn_never_had"}
