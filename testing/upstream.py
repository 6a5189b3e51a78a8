"""A synthetic upstream git repository for the backport tests, and the check every written
patch must pass.

``build_upstream`` makes a small mainline: a base, a commit that reworks lines the fix's
context needs (the prerequisite), an unrelated commit, and the fix; a tree made at the base
then lacks the prerequisite, so the fix conflicts there. ``exact_apply`` applies a written
patch to a copy of a tree with ``git apply`` and with ``patch -p1 -F0``, refusing any offset
or fuzz, and returns the files both give (they must agree).

The C here is synthetic (kfixtures.c_file), never kernel source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testing.gitrepo import commit, git, init, neutral_env
from testing.kfixtures import MAKEFILE, c_file

BASE = {"Makefile": MAKEFILE, "fs/a.c": c_file("a"), "fs/b.c": c_file("b")}
# the prerequisite rewrites the line right above the place the fix adds its lines: no fuzz
# can drop it, and a 3-way merge sees two changes that touch
PREREQ = ("\tctx->count1 += ret1;", "\tatomic_add(ret1, &ctx->count1);")
FIX = (
    "\tatomic_add(ret1, &ctx->count1);\n\treturn ret1;",
    "\tatomic_add(ret1, &ctx->count1);\n\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;",
)
OTHER = ("\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)")


@dataclass(frozen=True)
class Upstream:
    repo: Path
    base: str
    prereq: str
    other: str
    fix: str


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def build_upstream(repo: Path) -> Upstream:
    """base -> prerequisite (fs/a.c: the line the fix's context ends with) -> an unrelated
    change (fs/b.c) -> the fix (fs/a.c, right after the prerequisite's line)."""
    base = init(repo, BASE, "base")
    a1 = edit(BASE["fs/a.c"], *PREREQ)
    prereq = commit(
        repo,
        "fs: count ret1 atomically\n\nReaders do not hold the lock.\n\nSigned-off-by: P <p@example.org>\n",
        {"fs/a.c": a1},
    )
    other = commit(
        repo, "fs/b: check ctx\n\nSigned-off-by: O <o@example.org>\n", {"fs/b.c": edit(BASE["fs/b.c"], *OTHER)}
    )
    fix = commit(
        repo,
        "fs: guard ret1 against negative values\n\nSigned-off-by: F <f@example.org>\n",
        {"fs/a.c": edit(a1, *FIX)},
    )
    return Upstream(repo, base, prereq, other, fix)


def tree_at(up: Upstream, commit_id: str, dest: Path) -> Path:
    """A plain folder holding the upstream files of ``commit_id``."""
    dest.mkdir(parents=True)
    data = subprocess.run(
        ["git", "archive", "--format=tar", commit_id],
        cwd=up.repo,
        env=neutral_env(),
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return dest


# ---- the exactness check ------------------------------------------------------------------

_INEXACT = re.compile(rb"offset|fuzz|FAILED|ignored|Reversed", re.I)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def exact_apply(tree: Path, patch: bytes) -> dict[str, bytes]:
    """Every file of ``tree`` (a folder, not a git repository) after ``patch``, applied to
    two copies with ``git apply`` and ``patch -p1 -F0``: both must succeed with no offset
    and no fuzz, and give the same files. ``tree`` itself is not touched."""
    with tempfile.TemporaryDirectory(prefix="exact-") as tmp:
        results = []
        for tool in ("git", "patch"):
            d = Path(tmp) / tool
            shutil.copytree(tree, d, symlinks=True)
            if tool == "git":
                env = {**neutral_env(), "GIT_CEILING_DIRECTORIES": tmp}
                cp = subprocess.run(["git", "apply", "-v", "-"], cwd=d, input=patch, capture_output=True, env=env)
                out = cp.stderr
            else:
                cp = subprocess.run(
                    ["patch", "-p1", "-F0", "--no-backup-if-mismatch"], cwd=d, input=patch, capture_output=True
                )
                out = cp.stdout
            assert cp.returncode == 0, (tool, cp.stdout, cp.stderr)
            assert not _INEXACT.search(out), (tool, out)
            results.append(_snapshot(d))
        assert results[0] == results[1], "git apply and patch -F0 give different files"
        return results[0]


def apply_with_fuzz(tree: Path, diff: bytes) -> dict[str, bytes]:
    """Every file of ``tree`` after the original ``diff`` applied with GNU patch's default
    fuzz (what a maintainer would do by hand)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        d = Path(tmp) / "t"
        shutil.copytree(tree, d, symlinks=True)
        cp = subprocess.run(
            ["patch", "-p1", "-F2", "--no-backup-if-mismatch"], cwd=d, input=diff, capture_output=True
        )
        assert cp.returncode == 0, cp.stdout
        return _snapshot(d)


def git_am(tree: Path, patches: list[Path], dest: Path) -> str:
    """A git repository at ``dest`` holding ``tree``, with ``patches`` applied by ``git am``
    in order; the log's subjects, oldest first."""
    shutil.copytree(tree, dest, symlinks=True)
    init(dest, message="tree")
    for p in patches:
        git(dest, "am", "-q", str(p.resolve()))
    return git(dest, "log", "--reverse", "--format=%s", f"HEAD~{len(patches)}..HEAD")
