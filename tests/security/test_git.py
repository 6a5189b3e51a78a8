"""A hostile git checkout: its own .git/config (and a file it includes) sets every key that
can make git run a program to a command that touches a canary file. `patchcheck check` on
it, reading the work tree and reading a commit (--rev), judges as usual, runs none of them,
and leaves the checkout byte-identical (.git/index and its mtime included). A checkout owned
by another user (CI runs as root) is read too: the safe.directory decision is made on
purpose, for that tree only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from testing.pi_server import PIServer
from testing.rig import LOCAL, Rig, make_rig, no_traceback
from testing.treegen import snapshot

HOOKS = (
    "pre-commit",
    "post-checkout",
    "post-index-change",
    "reference-transaction",
    "fsmonitor-watchman",
    "pre-auto-gc",
    "post-rewrite",
    "post-merge",
)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )


def _touch(canary: Path, name: str) -> str:
    return f"touch '{canary / name}'"


def check(rig: Rig, *args: str) -> tuple[int, dict[str, str]]:
    """`patchcheck check --format json` on the rig's tree: exit code and verdicts by bug."""
    cp = rig.run("check", "--tree", str(rig.tree), "--format", "json", *args)
    no_traceback(cp)
    assert cp.stdout.strip(), (cp.returncode, cp.stderr)
    return cp.returncode, {r["bug"]: r["verdict"] for r in json.loads(cp.stdout)["results"]}


def make_hostile(tree: Path, canary: Path) -> None:
    """``tree`` becomes a checkout whose config arms every command-running key."""
    (tree / ".gitattributes").write_text("* diff=evil filter=evil merge=evil\n")
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-qm", "base")
    hooks = tree / ".git" / "hooks"
    for h in HOOKS:
        (hooks / h).write_text(f"#!/bin/sh\n{_touch(canary, 'hook-' + h)}\n")
        (hooks / h).chmod(0o755)
    hooks_dir = tree.parent / "evil-hooks"
    hooks_dir.mkdir()
    for h in HOOKS:
        (hooks_dir / h).write_text(f"#!/bin/sh\n{_touch(canary, 'hookspath-' + h)}\n")
        (hooks_dir / h).chmod(0o755)
    keys = {
        "core.fsmonitor": _touch(canary, "fsmonitor"),
        "core.hooksPath": str(hooks_dir),
        "core.sshCommand": _touch(canary, "sshcommand"),
        "core.gitProxy": _touch(canary, "gitproxy"),
        "core.pager": _touch(canary, "pager"),
        "pager.status": _touch(canary, "pager-status"),
        "pager.log": _touch(canary, "pager-log"),
        "core.editor": _touch(canary, "editor"),
        "sequence.editor": _touch(canary, "sequence-editor"),
        "core.askPass": _touch(canary, "askpass"),
        "core.alternateRefsCommand": _touch(canary, "alternate-refs"),
        "credential.helper": "!" + _touch(canary, "credential"),
        "diff.external": _touch(canary, "diff-external"),
        "diff.evil.textconv": _touch(canary, "textconv") + "; cat",
        "diff.evil.command": _touch(canary, "diff-command"),
        "filter.evil.clean": _touch(canary, "filter-clean") + "; cat",
        "filter.evil.smudge": _touch(canary, "filter-smudge") + "; cat",
        "filter.evil.process": _touch(canary, "filter-process"),
        "merge.evil.driver": _touch(canary, "merge-driver"),
        "gpg.program": str(hooks_dir / "post-merge"),
        "log.showSignature": "true",
        "uploadpack.packObjectsHook": _touch(canary, "pack-objects-hook"),
        "remote.origin.url": "ext::sh -c " + _touch(canary, "ext-transport").replace(" ", "% "),
        "protocol.ext.allow": "always",
    }
    for k, v in keys.items():
        _git(tree, "config", k, v)
    # a second layer arriving by include: a filter driver named only there
    inc = tree.parent / "included.cfg"
    inc.write_text(f'[filter "inc"]\n\tclean = {_touch(canary, "included-clean")}; cat\n')
    _git(tree, "config", "include.path", str(inc))
    _git(tree, "config", f"includeIf.gitdir:{tree}/.git.path", str(inc))
    (tree / ".git" / "info" / "attributes").write_text("*.c filter=inc\n")
    # stat-dirty files make `git status` hash content again: through the clean filters
    for p in tree.rglob("*.c"):
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))


@pytest.fixture
def hostile(tmp_path: Path, pi_server: PIServer) -> tuple[Rig, Path]:
    rig = make_rig(tmp_path, pi_server)
    canary = tmp_path / "canary"
    canary.mkdir()
    make_hostile(rig.tree, canary)
    return rig, canary


@pytest.mark.parametrize("rev", [None, "HEAD"])
def test_hostile_checkout_runs_nothing(hostile: tuple[Rig, Path], rev: str | None) -> None:
    rig, canary = hostile
    before = snapshot(rig.tree)
    index = rig.tree / ".git" / "index"
    index_stat = index.stat()
    extra = ("--rev", rev) if rev else ()
    code, verdicts = check(rig, "--bug", "b-good", "--bug", LOCAL, *extra)
    assert (code, verdicts) == (1, {"b-good": "backportable", LOCAL: "backportable"})
    assert sorted(os.listdir(canary)) == []
    assert snapshot(rig.tree) == before
    assert index.stat().st_mtime_ns == index_stat.st_mtime_ns


def test_core_worktree_outside_is_not_the_tree(hostile: tuple[Rig, Path], tmp_path: Path) -> None:
    """core.worktree names a folder outside: git status would compare the index with it and
    call the tree dirty. The folder the user named is the work tree."""
    rig, canary = hostile
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "Makefile").write_text("not the tree\n")
    _git(rig.tree, "config", "core.worktree", str(decoy))
    before, decoy_before = snapshot(rig.tree), snapshot(decoy)
    cp = rig.run("check", "--tree", str(rig.tree), "--bug", "b-good", "--format", "json")
    assert cp.returncode == 1, cp.stderr
    assert "work tree is dirty" not in cp.stdout
    assert sorted(os.listdir(canary)) == []
    assert (snapshot(rig.tree), snapshot(decoy)) == (before, decoy_before)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_tree_owned_by_another_user(hostile: tuple[Rig, Path]) -> None:
    rig, canary = hostile
    for dirpath, dirnames, filenames in os.walk(rig.tree):
        for n in [*dirnames, *filenames, "."]:
            os.lchown(os.path.join(dirpath, n), 65534, 65534)
    plain = subprocess.run(
        ["git", "rev-parse", "--git-dir"],
        cwd=rig.tree,
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    assert "dubious ownership" in plain.stderr  # git's own guard bites here...
    before = snapshot(rig.tree)
    for extra in ((), ("--rev", "HEAD")):
        # ...and patchcheck reads it on purpose
        assert check(rig, "--bug", "b-good", *extra) == (1, {"b-good": "backportable"})
    assert sorted(os.listdir(canary)) == []
    assert snapshot(rig.tree) == before
