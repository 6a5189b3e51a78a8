"""A 3-way merge for a patch nothing else can place: ``git apply --3way`` in a throwaway
repository inside the scratch root, whose object store borrows the tree's (and an
upstream clone's)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from patchcheck.engine.scratch import Scratch
from patchcheck.sys import git
from patchcheck.sys.paths import read_beneath, write_beneath
from patchcheck.text.diff import FilePatch


def merges_cleanly(scratch: Scratch, files: Sequence[FilePatch], diff: bytes, object_dirs: Sequence[Path]) -> bool:
    """True when the pre-image blobs named by the patch's index lines are in the object
    stores and the merge is clean. (--check alone does not see merge conflicts.)"""
    return merged_files(scratch, files, diff, object_dirs) is not None


def merged_files(
    scratch: Scratch, files: Sequence[FilePatch], diff: bytes, object_dirs: Sequence[Path]
) -> dict[str, bytes | None] | None:
    """The files a clean 3-way merge leaves (None for a path it deletes or never creates),
    by every path the patch names; None when the merge cannot be made or conflicts."""
    if not object_dirs or not any(b"\nindex " in fp.raw for fp in files):
        return None
    repo = Path(tempfile.mkdtemp(prefix="3way-", dir=scratch.root))
    env = {"GIT_CEILING_DIRECTORIES": str(scratch.root)}
    try:
        git.git(["init", "-q", str(repo)], env=env, check=True)
        (repo / ".git/objects/info/alternates").write_text("".join(f"{d}\n" for d in object_dirs))
        paths = []
        for p in sorted({fp.old_path for fp in files if fp.old_path}):
            data = scratch.read(p)
            if data is not None:
                write_beneath(repo, p, data)
                paths.append(p)
        if paths:
            git.git(["add", "--", *paths], cwd=repo, env=env, check=True)
        r = git.git(["apply", "--3way", "-"], cwd=repo, input=diff, env=env)
        if not r.ok or "with conflicts" in r.err():
            return None
        return read_files(repo, named_paths(files))
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def named_paths(files: Sequence[FilePatch]) -> list[str]:
    """Every path a patch names, old and new, sorted."""
    return sorted({p for fp in files for p in (fp.old_path, fp.new_path) if p})


def read_files(root: Path, paths: Sequence[str]) -> dict[str, bytes | None]:
    """Each path's bytes under ``root`` (None where there is no file), never through a link."""
    return {p: read_beneath(root, p, follow=False) for p in paths}
