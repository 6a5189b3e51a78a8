"""The scratch area: copies of only the files a series touches, where the tools run.

Later patches of a series see the earlier ones applied here, never in the user's tree. Each
thread reuses one scratch root for every series it checks.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from patchcheck.engine.blocks import LineIndex
from patchcheck.sys import git, patchtool, proc
from patchcheck.sys.paths import read_beneath, unlink_beneath, write_beneath
from patchcheck.text.diff import FilePatch
from patchcheck.trees.base import TreeView


class _Roots:
    """One scratch root per thread, reused by every series that thread checks: making and
    removing a temp folder tree per series cost more than the checks. All are removed at
    exit (and by ``cleanup``)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Path] = []
        self._hooked = False

    def take(self) -> Path | None:
        """This thread's root, or None while a Scratch of this thread already holds it."""
        if getattr(self._local, "busy", False):
            return None
        root: Path | None = getattr(self._local, "root", None)
        if root is None or not (root / "t").is_dir():
            root = Path(tempfile.mkdtemp(prefix="patchcheck-"))
            (root / "t").mkdir()
            with self._lock:
                self._all.append(root)
                if not self._hooked:
                    atexit.register(self.cleanup)
                    self._hooked = True
            self._local.root = root
        self._local.busy = True
        return root

    def give_back(self) -> None:
        self._local.busy = False

    def cleanup(self) -> None:
        with self._lock:
            roots, self._all = self._all, []
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)


_ROOTS = _Roots()


def forget_roots() -> None:
    """In a forked worker process: start from no roots (the inherited ones are the parent's,
    in use there); ``remove_roots`` removes this process's own."""
    global _ROOTS
    _ROOTS = _Roots()


def remove_roots() -> None:
    _ROOTS.cleanup()


class Scratch:
    """A temp folder holding copies of just the files a series touches.

    Later patches of a series see the earlier ones applied here, never in the tree. The
    folder is the thread's reused root: on close only the files this series may have put
    there are deleted (folders stay for the next series; they hold no files).

    Every path comes from a stranger's mail: callers pass only paths the gate accepts
    (``norm_relpath``), and every file operation here goes through sys/paths.py, walking
    down from the scratch folder without following links. A symlink a patch made (GNU patch
    creates git-style ones) is removed after each run, so nothing can read or write through
    it: its path then holds no file.
    """

    def __init__(self, tree: TreeView) -> None:
        self.tree = tree
        shared = _ROOTS.take()
        self._shared = shared is not None
        self.root = shared if shared is not None else Path(tempfile.mkdtemp(prefix="patchcheck-"))
        self.work = self.root / "t"
        if shared is None:  # a thread's root has its folder already (take() saw it)
            self.work.mkdir()
        self._loaded: set[str] = set()
        self._paths: set[str] = set()  # every path a file of this series may be at
        # file bytes and indexed lines per path, for the current scratch state: the block
        # searches of every hunk read them, and only a real (not --dry-run) run changes them
        self._data: dict[str, bytes | None] = {}
        self._index: dict[str, LineIndex] = {}
        # files read from the tree but not yet written here: only a tool needs them on disk,
        # and most patches are decided without one (engine/fast.py)
        self._pending: dict[str, bytes] = {}
        self._wrote = False  # anything written here (a flushed file, a tool run) this series

    def ensure(self, path: str) -> bool:
        """Copy ``path`` from the tree on first use; True when a regular file is there."""
        if path not in self._loaded:
            self._loaded.add(path)
            self._paths.add(path)
            data = self.tree.read(path)
            self._index.pop(path, None)
            if data is None:
                unlink_beneath(self.work, path)  # never trust a file an earlier series left here
                self._data.pop(path, None)
            else:
                self._pending[path] = data
                self._data[path] = data
        return self.read(path) is not None

    def _flush(self) -> None:
        """Write the files read from the tree that are not on disk yet (before a tool runs)."""
        pending, self._pending = self._pending, {}
        self._wrote = True  # the tool about to run may write too
        for path, data in pending.items():
            self._put(path, data)

    def read(self, path: str) -> bytes | None:
        """The regular file's bytes in the scratch; None when absent or not a regular file
        (a symlink is never followed)."""
        if path not in self._data:
            self._data[path] = read_beneath(self.work, path, follow=False)
        return self._data[path]

    def data(self, path: str) -> bytes:
        """The file's bytes in the scratch (empty when it is not there)."""
        return self.read(path) or b""

    def index(self, path: str) -> LineIndex:
        got = self._index.get(path)
        if got is None:
            data = self.data(path)
            got = self._index[path] = LineIndex(data.splitlines(), data)
        return got

    def lines(self, path: str) -> list[bytes]:
        return self.index(path).lines

    def _forget(self) -> None:
        self._data.clear()
        self._index.clear()

    def _put(self, path: str, data: bytes) -> None:
        try:
            write_beneath(self.work, path, data)
        except OSError:
            self._clear_way(path)  # a folder, file or link an earlier series left in the way
            self._forget()
            write_beneath(self.work, path, data)

    def _clear_way(self, path: str) -> None:
        """Remove what is in the way of writing ``path``: the first component that is not a
        real folder (a file or a link, itself, never its target), or a folder at ``path``."""
        cur = self.work
        for part in path.split("/"):
            cur = cur / part
            try:
                st = os.lstat(cur)  # every component before this one is a real folder
            except FileNotFoundError:
                return
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(cur)
                return
        shutil.rmtree(cur)

    def _sweep(self) -> None:
        """After a run that writes: remove every symlink (and anything but files and
        folders) the tools left in the scratch folder."""
        for top, dirs, files in os.walk(self.work):
            real = []
            for name in [*dirs, *files]:
                full = os.path.join(top, name)
                mode = os.lstat(full).st_mode
                if stat.S_ISDIR(mode):
                    real.append(name)
                elif not stat.S_ISREG(mode):
                    os.unlink(full)
            dirs[:] = [d for d in dirs if d in real]

    def apply(self, files: Sequence[FilePatch], fuzz: int) -> proc.Result:
        """Apply sections for real (later patches build on them); their paths are
        remembered so that close() deletes what they create."""
        for fp in files:
            self._paths.update(p for p in (fp.old_path, fp.new_path) if p)
        res = self.run_patch(b"".join(fp.raw for fp in files if not fp.binary), fuzz=fuzz, silent=True)
        binary = b"".join(fp.raw for fp in files if fp.binary and b"\nGIT binary patch\n" in fp.raw)
        if binary:  # GNU patch cannot apply binary data: git apply does, section by section
            git.git(["apply", "-"], cwd=self.work, input=binary, env={"GIT_CEILING_DIRECTORIES": str(self.root)})
            self._forget()
            self._sweep()
        return res

    def check_git_apply(self, diff: bytes, *, reverse: bool = False) -> proc.Result:
        """``git apply --check -v`` (nothing written)."""
        self._flush()
        # GIT_CEILING_DIRECTORIES stops git from finding a repository above the scratch
        # folder and resolving paths against it.
        return git.git(
            ["apply", "-v", "--check", *(["-R"] if reverse else []), "-"],
            cwd=self.work,
            input=diff,
            env={"GIT_CEILING_DIRECTORIES": str(self.root)},
        )

    def run_patch(
        self, diff: bytes, *, fuzz: int, reverse: bool = False, dry_run: bool = False, silent: bool = False
    ) -> proc.Result:
        self._flush()
        args = patchtool.argv(reverse=reverse, dry_run=dry_run, fuzz=fuzz, silent=silent)
        res = patchtool.run(args, cwd=self.work, input=diff)
        if not dry_run:
            self._forget()
            self._sweep()
        return res

    def close(self) -> None:
        if not self._shared:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        if not self._wrote:  # nothing of this series is on disk: nothing to remove
            _ROOTS.give_back()
            return
        clean = True
        for p in self._paths:
            try:
                unlink_beneath(self.work, p)
            except (OSError, ValueError):
                clean = False
        if not clean:  # something odd is left: start the next series from an empty folder
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir(exist_ok=True)
        _ROOTS.give_back()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
