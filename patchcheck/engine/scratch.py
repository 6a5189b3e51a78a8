"""The scratch area: copies of only the files a series touches, where the tools run.

Later patches of a series see the earlier ones applied here, never in the user's tree. Each
thread reuses one scratch root for every series it checks.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from patchcheck.sys import git, patchtool, proc
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


class Scratch:
    """A temp folder holding copies of just the files a series touches.

    Later patches of a series see the earlier ones applied here, never in the tree. The
    folder is the thread's reused root: on close only the files this series may have put
    there are deleted (folders stay for the next series; they hold no files).
    """

    def __init__(self, tree: TreeView) -> None:
        self.tree = tree
        shared = _ROOTS.take()
        self._shared = shared is not None
        self.root = shared if shared is not None else Path(tempfile.mkdtemp(prefix="patchcheck-"))
        self.work = self.root / "t"
        self.work.mkdir(exist_ok=True)
        self._loaded: dict[str, bool] = {}
        self._paths: set[str] = set()  # every path a file of this series may be at
        # file bytes and lines per path, for the current scratch state: the block searches
        # of every hunk read them, and only a real (not --dry-run) patch run changes them
        self._data: dict[str, bytes] = {}
        self._lines: dict[str, list[bytes]] = {}

    def ensure(self, path: str) -> bool:
        """Copy ``path`` from the tree on first use; True when it exists (here)."""
        if path not in self._loaded:
            data = self.tree.read(path)
            dest = self.work / path
            self._paths.add(path)
            if data is not None:
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
                except OSError:
                    self._clear_way(path)  # a folder or file an earlier series left in the way
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
                self._data[path] = data
                self._lines.pop(path, None)
            else:
                with contextlib.suppress(OSError):
                    dest.unlink()  # never trust a file an earlier series left here
            self._loaded[path] = data is not None
        return (self.work / path).is_file()

    def data(self, path: str) -> bytes:
        """The file's bytes in the scratch (empty when it is not there)."""
        got = self._data.get(path)
        if got is None:
            try:
                got = (self.work / path).read_bytes()
            except OSError:
                got = b""
            self._data[path] = got
        return got

    def lines(self, path: str) -> list[bytes]:
        got = self._lines.get(path)
        if got is None:
            got = self._lines[path] = self.data(path).splitlines()
        return got

    def _changed(self) -> None:
        self._data.clear()
        self._lines.clear()

    def _clear_way(self, path: str) -> None:
        """Remove what is in the way of writing ``path`` (not a file of this series)."""
        cur = self.work
        for part in Path(path).parts:
            cur = cur / part
            if cur.is_symlink() or cur.is_file():
                cur.unlink()
                return
        if cur.is_dir():
            shutil.rmtree(cur)

    def apply(self, files: Sequence[FilePatch], fuzz: int) -> proc.Result:
        """Apply sections for real (later patches build on them); their paths are
        remembered so that close() deletes what they create."""
        for fp in files:
            self._paths.update(p for p in (fp.old_path, fp.new_path) if p)
        return self.run_patch(b"".join(fp.raw for fp in files), fuzz=fuzz, silent=True)

    def check_git_apply(self, diff: bytes, *, reverse: bool = False) -> proc.Result:
        """``git apply --check -v`` (nothing written)."""
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
        if not dry_run:
            self._changed()
        args = patchtool.argv(reverse=reverse, dry_run=dry_run, fuzz=fuzz, silent=silent)
        return patchtool.run(args, cwd=self.work, input=diff)

    def close(self) -> None:
        if not self._shared:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        clean = True
        for p in self._paths:
            try:
                (self.work / p).unlink()
            except FileNotFoundError:
                pass
            except OSError:
                clean = False
        if not clean:  # something odd is left: start the next series from an empty folder
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir(exist_ok=True)
        _ROOTS.give_back()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
