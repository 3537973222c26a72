"""The project stands alone: no file in it refers to a path outside the repository.

Every file git knows here (tracked, or new and not ignored; without git, every file under
the root except .git, virtual environments and caches) is read as text and fails on:

- the team folder that used to sit beside the project (its name after one or more
  "go up one folder" steps, or followed by its docs or roots folder);
- an absolute path under the machine's work directory;
- a relative path whose leading run of "go up one folder" steps climbs above the
  repository from the folder of the file it is written in;
- ``Path(__file__)`` followed by more ``.parents[N]`` / ``.parent`` steps than the
  file is deep.

The patterns are assembled from pieces so that this file does not match itself.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_UP = "." + "." + "/"
_TEAM = "sha" + "red"
_WORK = "/" + "wo" + "rk"

_TEAM_FOLDER = re.compile(rf"(?:{re.escape(_UP)})+{_TEAM}\b|\b{_TEAM}/(?:docs|jpki-roots)\b")
_WORK_PATH = re.compile(rf"(?<![\w.~/-]){re.escape(_WORK)}(?:/|\b)")
_CLIMB = re.compile(rf"(?<![\w./-])((?:{re.escape(_UP)})+)")
_OWN_FILE = "Path(" + "__file__" + ")"
_PARENTS_N = re.compile(r"\.parents\[(\d+)\]")
_PARENT = re.compile(r"\.parent\b(?!s)")

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"}
_SKIP_SUFFIXES = (".egg-info", "_cache")


def findings_in(rel: str, text: str) -> list[str]:
    """``rel:line: what: the line`` for each reference out of the repository in ``text``."""
    depth = len(Path(rel).parts) - 1  # folders between the repository root and the file
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        what = []
        if _TEAM_FOLDER.search(line):
            what.append("the team folder beside the project")
        if _WORK_PATH.search(line):
            what.append("an absolute path of this machine")
        for m in _CLIMB.finditer(line):
            if len(m.group(1)) // len(_UP) > depth:
                what.append(f"'{m.group(1)}' climbs out of the repository")
        at = line.find(_OWN_FILE)
        if at >= 0:
            tail = line[at + len(_OWN_FILE) :]
            ups = [int(n) + 1 for n in _PARENTS_N.findall(tail)] + [1] * len(_PARENT.findall(tail))
            if sum(ups) > depth + 1:
                what.append(f"__file__ climbs {sum(ups)} folders from a file {depth + 1} deep")
        out.extend(f"{rel}:{number}: {w}: {line.strip()}" for w in what)
    return out


def _walk() -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [
            d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(_SKIP_SUFFIXES)
        ]
        for name in filenames:
            yield (Path(dirpath) / name).relative_to(ROOT).as_posix()


def repository_files() -> list[str]:
    """What git tracks or would add (ignored files left out); every file without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(_walk())
    return sorted({p for p in listed.decode("utf-8").split("\0") if p})


def _text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:  # listed but deleted meanwhile, or a directory (a submodule)
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_nothing_refers_outside_the_repository() -> None:
    files = repository_files()
    assert "tests/test_self_contained.py" in files
    assert "edge/jpki/roots/auth-ca-2023.pem" in files
    found = []
    for rel in files:
        text = _text(ROOT / rel)
        if text is not None:
            found += findings_in(rel, text)
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("rel", "line", "what"),
    [
        ("README.md", f"See `{_UP}{_TEAM}/docs/architecture.md`.", "team folder"),
        ("tests/conftest.py", f'SHARED = Path("{_UP}{_TEAM}") / "jpki-roots"', "team folder"),
        ("tests/conftest.py", f'ROOTS = HERE / "{_TEAM}/jpki-roots"', "team folder"),
        ("docs/hub.md", f"run `{_WORK}/main/.venv/bin/kyukyu`", "absolute path"),
        ("edge/x.py", f'ROOTS = "{_WORK}"', "absolute path"),
        ("docs/hub.md", f"see [the card]({_UP}{_UP}notes/card.md)", "climbs out"),
        ("README.md", f"see `{_UP}other-project/README.md`", "climbs out"),
        ("tests/conftest.py", f"ROOT = {_OWN_FILE}.resolve().parents[2]", "__file__ climbs"),
        ("tests/x.py", f"ROOT = {_OWN_FILE}.resolve().parent.parent.parent", "__file__ climbs"),
    ],
)
def test_each_kind_is_found_with_file_and_line(rel: str, line: str, what: str) -> None:
    found = findings_in(rel, f"first line\n{line}\n")
    assert any(what in f for f in found), found
    for f in found:
        assert f.startswith(f"{rel}:2: ")
        assert f.endswith(line.strip())


@pytest.mark.parametrize(
    ("rel", "line"),
    [
        ("docs/hub.md", f"see [the README]({_UP}README.md)"),  # docs/ -> the root
        ("tests/jpki/x.py", f"ROOT = {_OWN_FILE}.resolve().parents[2]"),
        ("tests/x.py", f"ROOT = {_OWN_FILE}.resolve().parent.parent"),
        ("edge/x.py", "from ..reader import pcsc"),
        ("docs/card-sim.md", "`pkcs11-tool --module .../opensc-pkcs11.so`"),
        ("docs/hub.md", "the workers share the network/work queue"),
        ("edge/x.py", "templates = Path(edge.ui.__file__).parent.parent.parent / 'web'"),
        ("docs/hub.md", "groups shared/exclusive locks"),
    ],
)
def test_paths_inside_the_repository_pass(rel: str, line: str) -> None:
    assert findings_in(rel, line) == []
