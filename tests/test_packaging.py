"""patchcheck as a release: `python -m build` gives an sdist and a wheel; the wheel installs
into a fresh venv and runs from there, away from this checkout, with the known bugs and the
report stylesheet it ships; `pipx install .` works too."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from patchcheck import __version__
from testing.dists import REPO, Dists, clean_env, session_dists

pytestmark = pytest.mark.slow

SHIPPED_BUGS = sorted(p.stem for p in (REPO / "patchcheck" / "known_bugs").glob("*.toml"))
CSS = (REPO / "patchcheck" / "report" / "report.css").read_text()


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return session_dists(tmp_path_factory)


def run(cmd: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300
    )


def test_sdist_ships_the_package_data_docs_and_tests(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in tf.getnames()}
    assert SHIPPED_BUGS
    for bug in SHIPPED_BUGS:
        assert f"patchcheck/known_bugs/{bug}.toml" in names
    assert "patchcheck/report/report.css" in names
    # enough to build the wheel again and to run the tests from the unpacked sdist
    for f in ("pyproject.toml", "README.md", "MANIFEST.in", "tests/conftest.py", "testing/pi_server.py"):
        assert f in names, f
    assert {
        "examples/ci/gitlab-ci.yml",
        "examples/ci/github-workflow.yml",
        "examples/ci/patchcheck-ci.sh",
    } <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_ships_known_bugs_css_and_the_command(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as zf:
        names = set(zf.namelist())
        (entry,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(entry).decode()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(meta).decode()
    assert {f"patchcheck/known_bugs/{b}.toml" for b in SHIPPED_BUGS} <= names
    assert "patchcheck/report/report.css" in names
    assert re.search(r"^patchcheck = patchcheck\.__main__:run$", entry_points, re.M)
    assert "License-Expression: GPL-2.0-only" in metadata
    assert f"\nVersion: {__version__}\n" in metadata  # one version, from patchcheck/__init__.py
    assert not [n for n in names if n.startswith(("tests/", "testing/"))]


def test_installed_wheel_runs_outside_the_checkout(dists: Dists, tmp_path: Path) -> None:
    pc = dists.bin / "patchcheck"
    cp = run([pc, "--version"], tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert re.fullmatch(r"patchcheck 0\.\d+\.\d+ \(b4 [\d.]+, Python 3\.\d+\.\d+\)\n", cp.stdout), cp.stdout
    assert f"b4 {version('b4')}" in cp.stdout  # the same b4 the dependency pin resolves to here

    where = run([dists.bin / "python", "-c", "import patchcheck; print(patchcheck.__file__)"], tmp_path)
    assert where.stdout.startswith(str(dists.venv)), where.stdout  # not this checkout

    listed = run([pc, "bugs", "list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert sorted(ln.split()[0] for ln in listed.stdout.splitlines()[2:] if ln.strip()) == SHIPPED_BUGS
    assert run([pc, "bugs", "validate"], tmp_path).returncode == 0

    # a real check from the installed package: the example tree and its local-mbox bug
    out = tmp_path / "report.html"
    example = [pc, "--tree", REPO / "examples" / "linux", "--bug", "demo-nfsd-callback-wq"]
    args = ["--bugs-dir", REPO / "examples" / "known_bugs", "--cache-dir", tmp_path / "cache"]
    check = run([*example, *args, "--offline", "--format", "html", "-o", out], tmp_path)
    assert check.returncode == 1, check.stderr  # the demo fix is backportable
    html = out.read_text()
    assert "demo-nfsd-callback-wq" in html and "backportable" in html
    assert CSS.splitlines()[2].strip() in html  # report.css inlined from the installed package


def test_pipx_install_from_a_checkout(dists: Dists, tmp_path: Path) -> None:
    """`pipx install .` in a checkout (pipx comes with the test extra) puts a working
    `patchcheck` on PATH."""
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    cp = run(
        [sys.executable, "-m", "pipx", "install", "."],
        dists.src,
        PIPX_HOME=str(home),
        PIPX_BIN_DIR=str(bin_dir),
        PIPX_MAN_DIR=str(tmp_path / "man"),
    )
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    v = run([bin_dir / "patchcheck", "--version"], tmp_path)
    assert v.returncode == 0 and v.stdout.startswith("patchcheck 0.") and "b4 " in v.stdout, v
    listed = run([bin_dir / "patchcheck", "bugs", "list"], tmp_path)
    assert all(b in listed.stdout for b in SHIPPED_BUGS), listed.stdout
