"""patchcheck as users get it: an sdist and a wheel built from this checkout with
``python -m build``, and a fresh venv with the wheel installed. Built once per test session
(the packaging tests and the CI example tests share them)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.offline import child_env

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Dists:
    src: Path  # the copy of the checkout they were built from
    sdist: Path
    wheel: Path
    venv: Path  # a fresh venv with the wheel (and its dependencies) installed

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus this checkout's venv and patchcheck settings."""
    env = child_env(drop=("PATCHCHECK_", "VIRTUAL_ENV", "PYTHON"))
    here = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != here)
    return {**env, **extra}


def _run(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> None:
    cp = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=clean_env()
    )
    assert cp.returncode == 0, f"{' '.join(map(str, args))} failed:\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}"


def source_copy(dst: Path) -> Path:
    """The files git would commit (tracked and new, not ignored): what a release is built from,
    without the build leaving egg-info or build/ in the checkout."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, out.decode().split("\0")):
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree, not yet committed
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            (dst / rel).symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst / rel)
    return dst


@functools.cache
def _build(root: Path) -> Dists:
    src = source_copy(root / "src")
    dist = root / "dist"
    # sdist first, then the wheel built from the sdist: a file missing from the sdist shows up
    _run(sys.executable, "-m", "build", "--outdir", dist, src)
    (sdist,) = dist.glob("patchcheck-*.tar.gz")
    (wheel,) = dist.glob("patchcheck-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    return Dists(src, sdist, wheel, venv)


def session_dists(factory: pytest.TempPathFactory) -> Dists:
    """Build (once per session) and return the sdist, the wheel and a venv holding the wheel."""
    return _build(factory.getbasetemp() / "dists")
