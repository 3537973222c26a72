"""The package as a technician installs it, away from this checkout.

The sdist is built from the tree, the wheel from the sdist (so the sdist must carry
everything), and the wheel goes into one fresh venv per role with only that role's
extra, offline from the wheelhouse ``scripts/bootstrap`` keeps in ``.venv/wheelhouse``
at the versions of ``requirements.lock``. Each role's commands then run from a
directory outside the source tree, on the installed code only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from kyukyu.testing import wait_until_serving
from tests.components import Pcscd

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
LOCK = ROOT / "requirements.lock"
PIP = (sys.executable, "-m", "pip", "-q", "--disable-pip-version-check")
PACKAGES = ("errbase", "edge", "sync", "hub_server", "hospital", "kyukyu")

# What each role's venv must not hold: another role's libraries.
NOT_IN = {
    "edge": {"fastapi", "uvicorn", "sqlmodel", "alembic", "psycopg", "argon2-cffi"},
    "hub": {"textual", "pyscard", "nfcpy", "argon2-cffi", "pyotp", "psycopg", "httpx"},
    "hospital": {"textual", "pyscard", "nfcpy", "prometheus-client", "psycopg", "uvloop"},
    "all": set(),
}
# The modules each role must import with only its extra installed.
MODULES = {
    "edge": ("errbase", "edge", "sync"),
    "hub": ("hub_server",),
    "hospital": ("hospital",),
    "all": PACKAGES,
}
# Imports every module of the packages named on its command line (not ``__main__``, which
# runs the CLI, nor the migration scripts, which alembic loads) and lists what is installed.
PROBE = """
import importlib, importlib.metadata as m, json, pkgutil, sys
files = []
for top in sys.argv[1:]:
    pkg = importlib.import_module(top)
    files.append(pkg.__file__)
    for info in pkgutil.walk_packages(pkg.__path__, top + "."):
        if not info.name.endswith(".__main__") and ".migrations.versions" not in info.name:
            importlib.import_module(info.name)
dists = sorted({d.metadata["Name"].lower() for d in m.distributions()})
print(json.dumps({"files": files, "dists": dists}))
"""
# No pytest, no dev tools, no project source on the path: an installed package only.
_CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KYUKYU_"))}


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Venv:
    root: Path
    role: str

    @property
    def kyukyu(self) -> str:
        return str(self.root / "bin" / "kyukyu")

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=cwd,
            env={**_CLEAN_ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _offline_pip_env() -> dict[str, str]:
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"{WHEELHOUSE} is missing: run scripts/bootstrap")
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}


def _check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """sdist from the tree, then the wheel from that sdist (``python -m build``)."""
    out = tmp_path_factory.mktemp("dist")
    _check(
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            env=_offline_pip_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    )
    (sdist,) = out.glob("kyukyu-*.tar.gz")
    (wheel,) = out.glob("kyukyu-*.whl")
    return Built(sdist, wheel)


def _install(role: str, wheel: Path, base: Path) -> Venv:
    root = base / f"venv-{role}"
    spec = f"{wheel}[{role}]"
    _check(
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
    )
    _check(
        subprocess.run(
            [*PIP, "--python", str(root / "bin/python"), "install", "-c", str(LOCK), spec],
            env=_offline_pip_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    )
    return Venv(root, role)


@pytest.fixture(scope="module")
def venvs(built: Built, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    """One fresh venv per role, installed side by side (pip mostly waits on the disk)."""
    base = tmp_path_factory.mktemp("venvs")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {r: pool.submit(_install, r, built.wheel, base) for r in NOT_IN}
        return {r: f.result() for r, f in futures.items()}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory with no source tree above it."""
    assert ROOT not in tmp_path.parents
    return tmp_path


def _tracked(*paths: str) -> set[str]:
    proc = _check(
        subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--", *paths],
            capture_output=True,
            text=True,
            check=False,
        )
    )
    return {p for p in proc.stdout.splitlines() if (ROOT / p).is_file()}


def test_the_sdist_and_the_wheel_carry_every_file_of_the_packages(built: Built) -> None:
    tracked = _tracked(*PACKAGES)
    assert "edge/provision/hardware/udev/60-kyukyu-readers.rules" in tracked
    with zipfile.ZipFile(built.wheel) as whl:
        in_wheel = set(whl.namelist())
    with tarfile.open(built.sdist) as tar:
        prefix = built.sdist.name.removesuffix(".tar.gz") + "/"
        in_sdist = {n.removeprefix(prefix) for n in tar.getnames()}
    assert tracked - in_wheel == set()
    assert tracked - in_sdist == set()
    assert {"LICENSE", "README.md", "pyproject.toml"} <= in_sdist
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in in_wheel)
    assert not [n for n in in_wheel if n.startswith(("tests/", "benchmarks/", "scripts/"))]


@pytest.mark.parametrize("role", list(NOT_IN))
def test_each_role_installs_what_it_imports_and_nothing_more(
    venvs: dict[str, Venv], role: str, outside: Path
) -> None:
    venv = venvs[role]
    proc = _check(venv.run(str(venv.root / "bin/python"), "-c", PROBE, *MODULES[role], cwd=outside))
    report = json.loads(proc.stdout)
    # The code imported is the installed copy, not this checkout.
    assert all(f.startswith(str(venv.root)) for f in report["files"]), report["files"]
    dists = set(report["dists"])
    assert "kyukyu" in dists
    assert dists & NOT_IN[role] == set()
    assert "pytest" not in dists


def test_every_role_answers_version(venvs: dict[str, Venv], outside: Path) -> None:
    for venv in venvs.values():
        proc = _check(venv.run(venv.kyukyu, "--version", cwd=outside))
        assert "0.1.0" in proc.stdout + proc.stderr


def test_edge_installs_the_packaged_hardware_files(venvs: dict[str, Venv], outside: Path) -> None:
    venv = venvs["edge"]
    root = outside / "root"
    root.mkdir()
    proc = venv.run(
        venv.kyukyu, "provision", "install", "--root", str(root), "--no-enable", cwd=outside
    )
    _check(proc)
    rules = root / "etc/udev/rules.d/60-kyukyu-readers.rules"
    source = ROOT / "edge/provision/hardware/udev/60-kyukyu-readers.rules"
    assert rules.read_bytes() == source.read_bytes()
    unit = (root / "etc/systemd/system/kyukyu-edge.service").read_text()
    assert f"ExecStart={venv.kyukyu} edge" in unit


def test_hub_migrates_and_serves(venvs: dict[str, Venv], outside: Path) -> None:
    import socket

    venv = venvs["hub"]
    env = {"KYUKYU_HUB_DB": f"sqlite:///{outside / 'hub.db'}", "KYUKYU_HUB_ENV": "dev"}
    _check(venv.run(venv.kyukyu, "hub", "migrate", cwd=outside, env=env))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (outside / "hub.log").open("w")
    proc = subprocess.Popen(
        [venv.kyukyu, "hub", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=outside,
        env={**_CLEAN_ENV, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(
            f"http://127.0.0.1:{port}", proc, why=lambda: (outside / "hub.log").read_text()
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_hospital_commands_answer(venvs: dict[str, Venv], outside: Path) -> None:
    venv = venvs["hospital"]
    proc = _check(venv.run(venv.kyukyu, "hospital", "init", "--help", cwd=outside))
    assert "--platform" in proc.stdout
    # The wheel carries the hospital's migrations, and the role's extra alembic.
    data_dir = outside / "hospital-data"
    data_dir.mkdir()
    migrate = ("hospital", "migrate", "--data-dir", str(data_dir))
    proc = _check(venv.run(venv.kyukyu, *migrate, cwd=outside))
    done = json.loads(proc.stdout)
    assert done["before"] is None
    assert done["after"] is not None
    assert (data_dir / "hospital.db").stat().st_mode & 0o777 == 0o600


def test_the_whole_demo_runs_from_the_installed_package(
    venvs: dict[str, Venv], pcscd: Pcscd, outside: Path
) -> None:
    venv = venvs["all"]
    work = outside / "demo"
    cmd = [venv.kyukyu, "demo", "--headless", "--json", "--workdir", str(work)]
    proc = _check(venv.run(*cmd, "--patients", "50", cwd=outside, timeout=240))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["card"]["trusted"] is True
    assert sorted(report["answers"].values()) == ["accept", "decline"]
    assert report["outbox_pending"] == 0


def _pins() -> dict[str, tuple[str, str]]:
    """``requirements.lock``: name -> (version, marker text)."""
    from packaging.utils import canonicalize_name

    pins: dict[str, tuple[str, str]] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            spec, _, marker = line.partition(" ; ")
            name, _, version = spec.partition("==")
            pins[canonicalize_name(name.split("[")[0])] = (version, marker)
    return pins


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    """A dependency added or moved in pyproject.toml without running scripts/lock fails here."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [*meta["build-system"]["requires"], *meta["project"]["dependencies"]]
    for items in meta["project"]["optional-dependencies"].values():
        reqs += [r for r in items if not r.startswith("kyukyu[")]  # `all` names the others
    pins = _pins()
    wrong = []
    for text in reqs:
        req = Requirement(text)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None or not req.specifier.contains(pinned[0], prereleases=True):
            wrong.append(f"{req} (lock: {pinned[0] if pinned else 'missing'})")
    assert wrong == [], f"run scripts/lock: {wrong}"
    lines = [ln for ln in LOCK.read_text().splitlines() if ln and ln[0] not in " #"]
    assert len(lines) == len(pins), "a package is pinned twice"
    assert all("==" in ln for ln in lines), "every pin is exact"
