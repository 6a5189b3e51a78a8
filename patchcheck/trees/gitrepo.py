"""A git checkout: its work tree as it is, or (with ``rev``) a commit's blobs.

Nothing here checks out, stashes or writes the index: ``proc`` sets GIT_OPTIONAL_LOCKS=0 so even
``git status`` leaves the repository untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.sys.git import git
from patchcheck.sys.paths import norm_relpath
from patchcheck.trees._common import (
    DEFAULT_MAX_MEMBER_BYTES,
    LeadsOut,
    check_user_path,
    outside_note,
    read_in_tree,
    require_version,
)
from patchcheck.trees.base import OpenRequest, TreeView, resolve_arch, tree_info
from patchcheck.trees.distro import PROBES, detect
from patchcheck.trees.registry import Kind, register

_BATCH = 2000  # paths per cat-file call: bounds the size of one reply held in memory


class GitTree(TreeView):
    def __init__(
        self,
        path: Path,
        *,
        name: str,
        rev: str | None = None,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
        arch: str | None = None,
    ) -> None:
        self.root = check_user_path(path, "a git checkout")
        self.limit = max_member_bytes
        res = git(["rev-parse", "--absolute-git-dir"], cwd=self.root)
        if not res.ok:
            why = res.err().strip().splitlines()
            raise TreeError(f"{self.root}: not a usable git repository ({why[-1] if why else 'git failed'})")
        self._git_dir = Path(res.out().strip())
        bare = git(["rev-parse", "--is-bare-repository"], cwd=self.root).out().strip() == "true"
        if bare and rev is None:
            rev = "HEAD"  # a bare repository has no work tree to read
        self._rev = rev
        self._blobs: dict[str, bytes | None] = {}
        self._lock = threading.Lock()
        notes: list[str] = []
        if rev is not None:
            self._commit: str | None = self._resolve(rev)
            if rev != self._commit:
                notes.append(f"reading {rev} ({self._commit[:12]}) from git objects")
        else:
            self._commit = self._resolve_head()
            notes.extend(self._state_notes())
        self.prepare(["Makefile", *PROBES])  # one git cat-file for all of them
        version = require_version(self.read("Makefile"), f"{self.root}" + (f"@{rev}" if rev else ""))
        arch = resolve_arch(arch)
        self.distro_info = detect(self.read, name=self.root.name, arch=arch)
        self.info = tree_info(
            name=name,
            source=str(self.root),
            kind="git",
            version=version,
            found=self.distro_info,
            distro=distro,
            arch=arch,
            labels=labels,
            notes=(*notes, *self.late_notes),
        )

    # -- identity --------------------------------------------------------------------------
    def _resolve(self, rev: str) -> str:
        res = git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
            cwd=self.root,
        )
        if not res.ok:
            raise TreeError(f"{self.root}: no commit {rev!r}; expected a branch, tag or commit")
        return res.out().strip()

    def _resolve_head(self) -> str | None:
        res = git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=self.root)
        return res.out().strip() if res.ok else None  # None: an unborn branch

    def _state_notes(self) -> list[str]:
        notes: list[str] = []
        status = git(["status", "--porcelain", "--untracked-files=no"], cwd=self.root)
        if status.ok and status.stdout.strip():
            notes.append("work tree is dirty")
        markers = {
            "rebase in progress": ("rebase-merge", "rebase-apply"),
            "merge in progress": ("MERGE_HEAD",),
            "cherry-pick in progress": ("CHERRY_PICK_HEAD",),
            "bisect in progress": ("BISECT_LOG",),
        }
        for note, names in markers.items():
            if any((self._git_dir / n).exists() for n in names):
                notes.append(note)
        return notes

    def git_dir(self) -> Path | None:
        return self._git_dir

    def head(self) -> str | None:
        return self._commit

    # -- reading ---------------------------------------------------------------------------
    @property
    def wants_paths(self) -> bool:
        return self._rev is not None  # blobs are read in batches

    def prepare(self, paths: Iterable[str]) -> None:
        if self._rev is not None:
            self._fetch(paths)

    def read(self, path: str) -> bytes | None:
        if self._rev is None:
            # As ``git cat-file --follow-symlinks`` for --rev: a link out of the tree is not read.
            try:
                return read_in_tree(self.root, path, str(self.root), self.limit)
            except LeadsOut as e:
                self.note(outside_note(e.path))
                return None
        rel = norm_relpath(path)
        if rel is None:
            return None
        if rel not in self._blobs:
            self._fetch([rel])
        return self._blobs.get(rel)

    def _fetch(self, paths: Iterable[str]) -> None:
        """Read blobs with one ``git cat-file --batch`` per chunk, following in-tree symlinks."""
        with self._lock:
            todo = sorted({n for p in paths if (n := norm_relpath(p)) and n not in self._blobs})
            outside: list[str] = []
            for i in range(0, len(todo), _BATCH):
                chunk = todo[i : i + _BATCH]
                query = "".join(f"{self._commit}:{p}\n" for p in chunk).encode()
                res = git(["cat-file", "--batch", "--follow-symlinks"], cwd=self.root, input=query)
                if not res.ok:
                    raise TreeError(f"{self.root}: git cat-file failed: {res.err().strip()}")
                blobs, out = _parse_batch(res.stdout, chunk, str(self.root))
                self._blobs.update(blobs)
                outside += out
            for rel in outside:
                self.note(outside_note(rel))


def _parse_batch(out: bytes, paths: list[str], label: str) -> tuple[dict[str, bytes | None], list[str]]:
    """Map each asked path to its blob bytes (None: missing, a folder, or points out of tree),
    and list the paths that are symlinks leading out of the tree."""
    got: dict[str, bytes | None] = {}
    outside: list[str] = []
    pos = 0
    for path in paths:
        eol = out.index(b"\n", pos)
        header = out[pos:eol].split(b" ")
        pos = eol + 1
        if header[-1] in (b"missing", b"ambiguous"):
            got[path] = None
            continue
        # "<sha> <type> <size>" or "<symlink|dangling|loop|notdir> <size>": size bytes follow.
        size = int(header[-1])
        body = out[pos : pos + size]
        pos += size + 1
        if header[0] == b"loop":
            raise TreeError(f"{label}: {path}: symlink loop; expected a readable file")
        if header[0] == b"symlink":
            outside.append(path)
        got[path] = body if len(header) == 3 and header[1] == b"blob" else None
    return got, outside


def _is_git(path: Path) -> bool:
    """A checkout (``.git`` folder or file) or a bare repository."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _open(req: OpenRequest) -> GitTree:
    return GitTree(
        req.path,
        name=req.name,
        rev=req.rev,
        distro=req.distro,
        labels=req.labels,
        max_member_bytes=req.max_member_bytes,
        arch=req.arch,
    )


register(Kind("git", "a git checkout", _open, priority=10, match_dir=_is_git, takes_rev=True))
