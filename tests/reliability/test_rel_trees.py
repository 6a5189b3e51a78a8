"""Bad trees through the real command: a tree that cannot be opened is exit 2 with one
line naming it; a bad file inside a tree is that bug's ``error`` (the others are judged);
odd git states are checked as they are and said. The tree is never written to.

Permissions do not bite root, so those runs drop CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH with
setpriv (still uid 0, so the interpreter and the packages stay reachable)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from testing.gitrepo import init
from testing.kfixtures import write_tree
from testing.rig import HUNK_A, LOCAL, OLD, Completed, Rig, drop_dac, edit, env, no_traceback, one_line_error
from testing.treegen import snapshot


def _as_user(rig: Rig, *args: str) -> Completed:
    cmd = [*drop_dac(), *rig.argv(*args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=60, cwd=rig.root)


def _check_both(rig: Rig, tree: Path | str) -> list[str]:
    return ["check", "--tree", str(tree), "--bug", "b-good", "--bug", LOCAL]


# -- trees that cannot be opened: exit 2, one line ----------------------------------------


def test_missing_path(rig: Rig) -> None:
    gone = rig.root / "linux-4.19.tar.xz"
    one_line_error(rig.run(*_check_both(rig, gone)), 2, str(gone), "no such file or folder")


def test_symlink_loop_as_the_tree(rig: Rig) -> None:
    (rig.root / "l1").symlink_to(rig.root / "l2")
    (rig.root / "l2").symlink_to(rig.root / "l1")
    one_line_error(rig.run(*_check_both(rig, rig.root / "l1")), 2, "l1", "symlink loop")


@pytest.mark.parametrize(
    "what", ["empty-folder", "makefile-without-version", "text-file", "dev-null", "dangling-symlink"]
)
def test_not_a_kernel_tree(rig: Rig, what: str) -> None:
    spec: Path = rig.root / what
    words = {
        "empty-folder": "no top-level Makefile",
        "makefile-without-version": "no 'VERSION ='",
        "text-file": "unsupported file type",
        "dev-null": "not a regular file or folder",
        "dangling-symlink": "dangling symlink",
    }[what]
    if what == "empty-folder":
        spec.mkdir()
    elif what == "makefile-without-version":
        write_tree(spec, {"Makefile": "all:\n\ttrue\n"})
    elif what == "text-file":
        spec.write_text("hello\n")
    elif what == "dev-null":
        spec = Path("/dev/null")
    else:
        spec.symlink_to(rig.root / "nowhere")
    one_line_error(rig.run(*_check_both(rig, spec)), 2, str(spec), words)


def test_unreadable_tree_folder_and_archive(rig: Rig) -> None:
    tarball = rig.root / "linux.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(rig.root), "linux"], check=True)
    tarball.chmod(0)
    rig.tree.chmod(0)
    try:
        for spec in (tarball, rig.tree):
            one_line_error(_as_user(rig, *_check_both(rig, spec)), 2, str(spec), "permission denied")
    finally:
        rig.tree.chmod(0o755)


# -- a bad file inside the tree: that bug's error, the others judged ------------------------


def _inside(rig: Rig, cp: Completed, *words: str) -> None:
    no_traceback(cp)
    # the bug's `error` names the file; an unreadable tree is bad input: exit 2
    assert cp.returncode == 2, (cp.returncode, cp.stderr)  # an unreadable tree is bad input
    res = {r["bug"]: r for r in json.loads(cp.stdout)["results"]}
    assert res["b-good"]["verdict"] == "error"
    for w in words:
        assert w in res["b-good"]["error"], (w, res["b-good"]["error"])
    assert res[LOCAL]["verdict"] == "backportable"


def test_unreadable_file_inside(rig: Rig) -> None:
    (rig.tree / "fs/a.c").chmod(0)
    before = snapshot(rig.root / "linux")
    cp = _as_user(rig, *_check_both(rig, rig.tree), "--format", "json")
    _inside(rig, cp, "fs/a.c", "permission denied")
    assert snapshot(rig.root / "linux") == before


def test_symlink_loop_inside(rig: Rig) -> None:
    (rig.tree / "fs/a.c").unlink()
    (rig.tree / "fs/a.c").symlink_to("a.c")
    _inside(rig, rig.run(*_check_both(rig, rig.tree), "--format", "json"), "fs/a.c", "symlink loop")


def test_socket_where_a_file_is_expected(rig: Rig) -> None:
    (rig.tree / "fs/a.c").unlink()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(rig.tree / "fs/a.c"))
        _inside(rig, rig.run(*_check_both(rig, rig.tree), "--format", "json"), "fs/a.c")


def test_folder_where_a_file_is_expected(rig: Rig) -> None:
    """A folder at a patched path is no such file: the fix's code is not in this tree."""
    (rig.tree / "fs/a.c").unlink()
    (rig.tree / "fs/a.c").mkdir()
    cp, res = rig.check("b-good", LOCAL)
    assert cp.returncode == 1
    assert res["b-good"]["verdict"] == "not-applicable"
    assert "fs/a.c" in res["b-good"]["patches"][0]["evidence"]


def test_fifo_where_a_file_is_expected(rig: Rig) -> None:
    """As the tree, as its Makefile, and as a patched file: an error, not a hang."""
    trees = {}
    for where in ("tree", "makefile", "patched"):
        t = write_tree(rig.root / f"fifo-{where}", OLD)
        target = {"tree": rig.root / f"fifo-{where}.tar.gz", "makefile": t / "Makefile", "patched": t / "fs/a.c"}[
            where
        ]
        if target.exists():
            target.unlink()
        os.mkfifo(target)
        trees[where] = target if where == "tree" else t
    procs = {w: rig.popen(*_check_both(rig, t)) for w, t in trees.items()}
    deadline = time.monotonic() + 3  # a normal run takes well under a second
    hung = []
    for w, p in procs.items():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            hung.append(w)
        p.communicate()
    assert not hung, f"patchcheck hung on a FIFO: {hung}"


# -- git: checked as it is, and said ------------------------------------------------------


def test_git_dirty_and_mid_rebase(rig: Rig) -> None:
    init(rig.tree)
    # the fix sits in the work tree, not committed; a rebase stopped half way
    write_tree(rig.tree, {"fs/a.c": edit(OLD, "fs/a.c", *HUNK_A)["fs/a.c"]})
    (rig.tree / ".git" / "rebase-merge").mkdir()
    (rig.tree / ".git" / "rebase-merge" / "head-name").write_text("refs/heads/main\n")
    before = snapshot(rig.root / "linux")
    cp = rig.run(*_check_both(rig, rig.tree), "--format", "json")
    no_traceback(cp)
    data = json.loads(cp.stdout)
    assert data["trees"][0]["kind"] == "git"
    assert data["trees"][0]["notes"] == ["work tree is dirty", "rebase in progress"]
    res = {r["bug"]: r for r in data["results"]}
    assert (res["b-good"]["verdict"], res["b-good"]["method"]) == ("present", "exact")
    table = rig.run(*_check_both(rig, rig.tree))
    assert "note: work tree is dirty" in table.stdout and "note: rebase in progress" in table.stdout
    assert snapshot(rig.root / "linux") == before
