"""b4 runs git itself (``git patch-id`` for every patch it reads). Run from a folder inside a
hostile repository (its config arms every command-running key, includes a file that does
too, and includes a FIFO, which git would wait on forever), or with ``GIT_DIR`` naming it,
``patchcheck fetch`` reads nothing of it: no canary, exit 0, and in bounded time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testing.pi_server import PIServer
from testing.rig import Rig, env, make_rig, no_traceback
from tests.security.test_git import make_hostile


@pytest.fixture
def hostile(tmp_path: Path, pi_server: PIServer) -> tuple[Rig, Path, Path]:
    rig = make_rig(tmp_path, pi_server)
    repo = tmp_path / "elsewhere" / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "x.c").write_text("int x;\n")
    canary = tmp_path / "canary"
    canary.mkdir()
    make_hostile(repo, canary)
    fifo = tmp_path / "elsewhere" / "config.fifo"
    os.mkfifo(fifo)
    subprocess.run(["git", "config", "--add", "include.path", str(fifo)], cwd=repo, check=True, env=env())
    return rig, repo, canary


@pytest.mark.parametrize("where", ["cwd", "GIT_DIR"])
def test_fetch_reads_no_repository_of_the_user(hostile: tuple[Rig, Path, Path], where: str) -> None:
    rig, repo, canary = hostile
    run_env = env()
    if where == "GIT_DIR":
        run_env = {**run_env, "GIT_DIR": str(repo / ".git"), "GIT_WORK_TREE": str(repo)}
    cwd = repo / "sub" if where == "cwd" else rig.root
    # git itself would hang on the FIFO include here (the bound below catches that)
    cp = subprocess.run(
        rig.argv("fetch", "--all"), capture_output=True, text=True, env=run_env, cwd=cwd, timeout=60
    )
    no_traceback(cp)
    assert cp.returncode == 0, cp.stderr
    assert "b-good: good-1@example.org: v1, 1 patch(es) (lore)" in cp.stdout, cp.stdout
    assert "b-local: local.mbox: v1, 1 patch(es) (mbox)" in cp.stdout, cp.stdout
    assert sorted(os.listdir(canary)) == []
