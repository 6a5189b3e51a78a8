"""b4 runs git itself (``git patch-id`` for every patch of a series it reads, when the thread
holds more than one revision). Run from a folder inside a hostile repository (its config arms
every command-running key, includes a file that does too, and includes a FIFO, which git would
wait on forever), or with ``GIT_DIR`` naming it, ``patchcheck fetch`` reads nothing of it: no
canary, exit 0, and in bounded time. A thread of one revision runs no git at all."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patchcheck.fetch import b4shim
from patchcheck.model import Fix
from patchcheck.sys import git as sys_git
from testing.mailgen import make_mbox, make_series, simple_diff
from testing.pi_server import PIServer
from testing.rig import Rig, env, make_rig, no_traceback
from tests.fetch.helpers import fetcher
from tests.security.test_git import make_hostile


def serve_two_revisions(server: PIServer, diff: bytes | str) -> str:
    """v1 and v2 of a one-patch series in one thread (v2 a reply to v1); v2's msgid."""
    v1 = make_series("rev", 1, revision=1, cover=False, diffs=[diff])
    v2 = make_series("rev", 1, revision=2, cover=False, diffs=[diff], in_reply_to=v1.patch_msgids[0])
    server.add_thread(make_mbox(v1.messages + v2.messages))
    return v2.patch_msgids[0]


@pytest.fixture
def hostile(tmp_path: Path, pi_server: PIServer) -> tuple[Rig, Path, Path]:
    rig = make_rig(tmp_path, pi_server)
    repo = tmp_path / "elsewhere" / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "x.c").write_text("int x;\n")
    canary = tmp_path / "canary"
    canary.mkdir()
    make_hostile(repo, canary)
    # two revisions in one thread: b4 asks git for patch-ids there
    rig.fix_bug("b-rev", serve_two_revisions(pi_server, rig.diff_a))
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
    assert "b-rev: rev-v2-1@example.org: v2, 1 patch(es) (lore)" in cp.stdout, cp.stdout
    assert sorted(os.listdir(canary)) == []


def test_patch_ids_only_where_they_can_matter(
    pi_server: PIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b4 uses patch-ids only to carry trailers over from another revision of the series:
    for a thread of one revision it runs no ``git patch-id``; for one of two it still does
    (through our door), and the selections are b4's either way."""
    calls: list[list[str]] = []

    def spy(args: list[str], **kw: Any) -> Any:
        calls.append(list(args))
        return sys_git.git(args, **kw)

    monkeypatch.setattr(b4shim, "git", spy)
    diff = simple_diff("fs/one.c")
    one = make_series("one", 3, diffs=[diff, simple_diff("fs/two.c"), simple_diff("fs/three.c")])
    pi_server.add_thread(one.mbox)
    two = serve_two_revisions(pi_server, diff)
    f = fetcher(tmp_path, pi_server)

    s = f.get(Fix(msgid=one.cover_msgid))
    assert [p.msgid for p in s.patches] == one.patch_msgids
    s = f.get(Fix(msgid=one.cover_msgid, patches=(2,)))
    assert [p.msgid for p in s.patches] == one.patch_msgids[1:2]
    assert calls == []

    s = f.get(Fix(msgid=two))
    assert (s.revision, [p.msgid for p in s.patches]) == (2, [two])
    assert calls and all(c[:1] == ["patch-id"] for c in calls)
    calls.clear()
    s = f.get(Fix(msgid=two, revision=1))
    assert (s.revision, [p.msgid for p in s.patches]) == (1, ["rev-v1-1@example.org"])
    assert calls and all(c[:1] == ["patch-id"] for c in calls)
