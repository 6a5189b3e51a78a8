"""Selective, cached extraction of a tar stream: only the members a run asks for.

A kernel tarball holds ~78,000 files; a check reads a few dozen. ``MemberStore.ensure`` streams
the archive once per call and keeps just the missing members it was asked for, under a cache
folder keyed by the archive's hash, and remembers which paths the archive does not have.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from patchcheck.errors import TreeError
from patchcheck.sys.paths import UnsafePath, clean_relpath, norm_relpath, read_beneath
from patchcheck.trees._common import LeadsOut, check_size, load_json, save_json, writing
from patchcheck.trees.archive.compress import BUFSIZE, READ_ERRORS, Limited, open_decompressed
from patchcheck.trees.archive.tar import RawMember, TarError, iter_tar

# Opens the archive and yields its decompressed tar bytes as a stream: each pass re-opens it.
StreamOpener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]

_LINK_DEPTH = 40  # like the kernel's own limit on nested symlinks
_READ_ERRORS = (TarError, *READ_ERRORS)


class _TopMismatch(Exception):
    """The guessed single top-level folder turned out not to be shared by every member."""


def member_name(name: str, archive: str) -> str | None:
    """A member's path without ``./`` and a trailing ``/``; None for the archive's root.
    Through the path gate: an absolute name, one climbing out with ``..``, or one holding
    NUL is refused (TreeError naming the archive), never written or looked up."""
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if not name or name == ".":
        return None
    try:
        return clean_relpath(name, f"{archive}: member")
    except UnsafePath as e:
        raise TreeError(str(e)) from e


def read_tar_files(path: Path, limit: int, want: Callable[[str], bool]) -> dict[str, bytes]:
    """The regular files of a small tarball (a debian.tar.xz, an SRPM's patches.tar.bz2) whose
    names ``want`` takes, by name, in memory. The tarball as a whole, decompressed, is what
    ``limit`` bounds."""
    out: dict[str, bytes] = {}
    try:
        with open(path, "rb") as f, open_decompressed(f, path.name) as raw:
            for m in iter_tar(io.BufferedReader(Limited(raw, limit, str(path)))):
                name = member_name(m.name, str(path))
                if name is not None and m.isfile() and want(name):
                    out[name] = m.read()
    except (TarError, OSError, *READ_ERRORS) as e:
        raise TreeError(f"{path}: corrupt tarball ({e})") from e
    return out


def link_target(rel: str, linkname: str) -> str | None:
    """Where a symlink member ``rel`` points, as a path of the archive; None when it leads
    out (absolute, or climbing above the root): recorded so, never followed."""
    if linkname.startswith("/"):
        return None
    return norm_relpath(posixpath.join(posixpath.dirname(rel), linkname))


def _write_member(staging: Path, rel: str, m: RawMember, limit: int, label: str) -> Path:
    """Stream a member's data to ``staging/rel`` (a folder only this pass writes to)."""
    check_size(m.size, limit, f"{label}: {rel}")
    dest = staging / rel
    with writing(dest, f"{rel} of {label}"):
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with open(fd, "wb") as out:
            while chunk := m.read_some(BUFSIZE):
                out.write(chunk)
    return dest


class MemberStore:
    """The extracted members of one archive, in ``root`` (a cache folder).

    ``passes`` counts archive passes made by this object: tests use it to prove cache reuse.
    """

    def __init__(self, root: Path, opener: StreamOpener, label: str, limit: int) -> None:
        self.root = root
        self.files = root / "files"
        self.label = label
        self.limit = limit
        self.passes = 0
        self._opener = opener
        self._lock = threading.Lock()  # read() may come from several worker threads
        self._state_path = root / "state.json"
        self._load()

    # -- state: which paths are extracted, absent, or links --------------------------------
    def _load(self) -> None:
        raw = load_json(self._state_path)
        if not isinstance(raw, dict):
            raw = {}
        top = raw.get("top")
        self._top: str | None = top if isinstance(top, str) else None
        self._present: set[str] = set(raw.get("present") or ())
        self._absent: set[str] = set(raw.get("absent") or ())
        self._links: dict[str, str | None] = dict(raw.get("links") or {})

    def _save(self) -> None:
        state = {
            "top": self._top,
            "present": sorted(self._present),
            "absent": sorted(self._absent),
            "links": self._links,
        }
        save_json(self._state_path, state, f"the member index of {self.label}")

    def _known(self, rel: str) -> bool:
        return rel in self._present or rel in self._absent or rel in self._links

    # -- public ----------------------------------------------------------------------------
    def ensure(self, paths: Iterable[str]) -> None:
        """Make sure every path is extracted or known absent: at most one pass per link level."""
        wanted = {n for p in paths if (n := norm_relpath(p)) is not None}
        with self._lock:
            for _ in range(_LINK_DEPTH):
                missing = {p for p in wanted if not self._known(p)}
                if not missing:
                    return
                with writing(self.root / "lock", f"a lock file for {self.label}"):
                    self.root.mkdir(parents=True, exist_ok=True)
                    lock = open(self.root / "lock", "a+b")  # noqa: SIM115 - closed below
                with lock:
                    # Another patchcheck process may be filling the same entry: take turns.
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    self._load()
                    missing = {p for p in missing if not self._known(p)}
                    if missing:
                        self._extract(missing)
                        self._save()
                # Links found in this pass need their targets: another (smaller) pass.
                wanted = {t for p in wanted if (t := self._links.get(p)) is not None}
            raise TreeError(f"{self.label}: symlink loop among {sorted(wanted)[:3]}")

    def read(self, path: str) -> bytes | None:
        """A member's bytes (symlinks followed inside the archive), None when it has none;
        LeadsOut for a symlink that leads out of it."""
        rel = norm_relpath(path)
        if rel is None:
            return None
        for _ in range(_LINK_DEPTH):
            self.ensure([rel])
            if rel in self._links:
                target = self._links[rel]
                if target is None:
                    raise LeadsOut(rel)
                rel = target
                continue
            if rel not in self._present:
                return None
            data = read_beneath(self.files, rel, follow=False)
            if data is not None:
                return data
            # Someone pruned the cache under us: forget the path and extract it again.
            with self._lock:
                self._present.discard(rel)
        raise TreeError(f"{self.label}: {path}: symlink loop; expected a readable file")

    # -- one pass over the archive ---------------------------------------------------------
    def _extract(self, missing: set[str]) -> None:
        try:
            try:
                self._scan(missing, self._top)
            except _TopMismatch:
                self._scan(missing, "")
        except _READ_ERRORS as e:
            raise TreeError(
                f"{self.label}: corrupt or truncated archive ({e}); expected a readable tar archive"
            ) from e
        except OSError as e:
            raise TreeError(
                f"{self.label}: cannot read the archive ({e.strerror or e}); expected a readable tar archive"
            ) from e

    def _scan(self, missing: set[str], top: str | None) -> None:
        self.passes += 1
        with writing(self.root, f"a staging folder for {self.label}"):
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix="staging-"))
        found: dict[str, Path] = {}
        links: dict[str, str | None] = {}
        seen_any = False
        try:
            with self._opener() as stream:
                for m in iter_tar(stream):
                    name = member_name(m.name, self.label)
                    if name is None:
                        continue
                    is_dir = m.type == b"5"
                    if top is None:
                        # Guess the single top folder from the first member. Every later member
                        # is checked against it, but a pass that stops early trusts the guess:
                        # a tarball whose first entry is a folder that holds the Makefile and
                        # then has other top-level entries is not a shape kernels ship in.
                        first, _, rest = name.partition("/")
                        top = first if (rest or is_dir) else ""
                    seen_any = True
                    if top:
                        if name == top:
                            continue
                        if not name.startswith(top + "/"):
                            raise _TopMismatch
                        rel = name[len(top) + 1 :]
                    else:
                        rel = name
                    if rel not in missing or rel in found or rel in links:
                        continue
                    if m.isfile():
                        found[rel] = _write_member(staging, rel, m, self.limit, self.label)
                    elif m.issym():
                        links[rel] = link_target(rel, m.linkname)
                    elif m.islnk():
                        # Hard links name another archive member; refer to it like a symlink.
                        target = norm_relpath(m.linkname.removeprefix("./").rstrip("/"))
                        if target is not None and top and target.startswith(top + "/"):
                            target = target[len(top) + 1 :]
                        links[rel] = target
                    # Directories and devices are not files: they count as absent.
                    if top is not None and len(found) + len(links) == len(missing):
                        break  # everything asked for is here: no need to read further
            if not seen_any:
                raise TarError("no members")
            for rel, src_path in found.items():
                dest = self.files / rel
                with writing(dest, f"{rel} of {self.label}"):
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src_path, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._top = top or ""
        self._present.update(found)
        self._links.update(links)
        self._absent.update(missing - found.keys() - links.keys())
