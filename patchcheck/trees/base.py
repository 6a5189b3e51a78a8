"""The tree interface every source kind implements, and the one base of the archive kinds."""

from __future__ import annotations

import dataclasses
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from patchcheck.model import TreeInfo
from patchcheck.sys.paths import norm_relpath
from patchcheck.trees._common import (
    DEFAULT_MAX_MEMBER_BYTES,
    LeadsOut,
    check_user_path,
    content_key,
    entry_dir,
    outside_note,
    require_version,
    writing,
)
from patchcheck.trees.archive.queue import PatchQueue, QueuePatch
from patchcheck.trees.archive.store import MemberStore
from patchcheck.trees.distro import PROBES, DistroInfo, detect
from patchcheck.trees.specexpr import host_arch, normalize_arch

_NOTES_LOCK = threading.Lock()


class TreeView(ABC):
    """A read-only kernel source tree.

    ``prepare`` is called once with every path a run may read (all bugs are known up front),
    so archive-backed trees can extract just those members in a single pass.
    """

    info: TreeInfo
    late_notes: tuple[str, ...] = ()  # said while reading, after ``info`` may have been built
    distro_info: DistroInfo | None = None  # what trees/distro.py found in the tree's files

    def note(self, text: str) -> None:
        """Add a note about the tree (e.g. a symlink not followed), shown with the report."""
        with _NOTES_LOCK:
            if text in self.late_notes:
                return
            self.late_notes = (*self.late_notes, text)
            if hasattr(self, "info"):
                self.info = dataclasses.replace(self.info, notes=(*self.info.notes, text))

    def prepare(self, paths: Iterable[str]) -> None:  # noqa: B027 - optional hook
        """Hint: these paths will be read. Default: nothing to do."""

    @property
    def wants_paths(self) -> bool:
        """Whether ``prepare`` wants every path before the first read (one pass over an
        archive): then the series are all fetched before any bug is checked."""
        return False

    @abstractmethod
    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when the tree has no such file."""

    def exists(self, path: str) -> bool:
        return self.read(path) is not None

    def git_dir(self) -> Path | None:
        """A git object store holding this tree's history/blobs (for history and 3way)."""
        return None

    def head(self) -> str | None:
        """The commit the view shows, when it is a git tree."""
        return None

    def changelog(self) -> str | None:
        """A distro changelog shipped with the tree (Ubuntu's debian.master/changelog, Debian's
        changelog, an RPM %changelog): the one distro detection read."""
        return self.distro_info.changelog if self.distro_info is not None else None

    def queue_headers(self) -> list[tuple[str, str]]:
        """(name, text before its diff) of each patch the package applies forward to build
        the tree (an SRPM's queue): its backport headers are evidence, as a changelog is."""
        return []


def resolve_arch(arch: str | None) -> str:
    """rpm's name for ``arch`` (amd64 -> x86_64), the host's when None."""
    return normalize_arch(arch) if arch else host_arch()


def tree_info(
    *,
    name: str,
    source: str,
    kind: str,
    version: str | None,
    found: DistroInfo | None,
    distro: str | None,
    arch: str,
    labels: dict[str, str] | None,
    notes: Iterable[str],
    release: str | None = None,
) -> TreeInfo:
    """A TreeInfo with what distro detection found; ``distro`` (the trees file's) wins,
    ``release`` (a package's own version field) stands in when the files name none."""
    said: list[str] = list(notes)
    if found is not None:
        what = " ".join(x for x in (found.distro, found.release, found.version) if x)
        said.append(f"{what}{f', ABI {found.abi}' if found.abi else ''} (from {found.evidence})")
        said += found.notes
    return TreeInfo(
        name=name,
        source=source,
        kind=kind,
        version=version,
        distro=distro or (found.distro if found else None),
        release=found.version if found is not None and found.version else release,
        labels=dict(labels or {}),
        notes=tuple(said),
        arch=found.arch if found is not None and found.arch else arch,
        abi=found.abi if found else None,
    )


@dataclass(frozen=True)
class OpenRequest:
    """What ``open_tree`` knows when it hands a path to its kind."""

    path: Path
    cache_dir: Path
    name: str  # the trees.toml name, or the path as given
    rev: str | None = None
    distro: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES  # the most a file or member may hold
    arch: str = field(default_factory=host_arch)  # rpm arch name the tree is read for


@dataclass
class Opened:
    """What an archive kind found in its package: the base tarball's store, an optional patch
    queue, and what to say about it."""

    store: MemberStore
    label: str  # where the Makefile was looked for, for "not a kernel tree" messages
    queue: list[QueuePatch] = field(default_factory=list)
    extra: dict[str, bytes] = field(default_factory=dict)  # files laid over the base first
    queue_what: str = "patch"  # "spec patch", "quilt patch"... for messages
    queue_key: str = ""  # what else the queue depends on (an SRPM's arch): its own cache folder


class ArchiveTree(TreeView):
    """A tree read out of a user's archive through the tree cache (tarball, .deb, .dsc,
    SRPM). Nothing is unpacked next to the user's file: members a run asks for are extracted
    under ``<cache_dir>/<kind>-<sha256 of the file>/`` (``cache_dir``: the tree cache).

    A kind implements ``_open`` (find the base tarball and the queue) and may override
    ``_describe`` (distro facts and notes) and ``changelog``.
    """

    kind: ClassVar[str]
    what: ClassVar[str]  # "a kernel tarball": how messages name the user's file
    package_version: str | None = None  # the package's own version field, set by ``_open``

    def __init__(
        self,
        path: Path,
        *,
        cache_dir: Path,
        name: str,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
        arch: str | None = None,
    ) -> None:
        self.src = check_user_path(path, self.what)
        self.arch = resolve_arch(arch)
        self.cache_dir = Path(os.path.abspath(cache_dir))  # GNU patch runs with -d inside it
        self.limit = max_member_bytes
        self.entry = entry_dir(self.cache_dir, self.kind, content_key(self.src, self.cache_dir))
        opened = self._open()
        self.store = opened.store
        self.queue: PatchQueue | None = None
        if opened.queue or opened.extra:
            qdir = self.entry
            if opened.queue_key:
                qdir = self.entry / f"queue-{opened.queue_key}"
                with writing(qdir, "the patch queue cache folder"):
                    qdir.mkdir(exist_ok=True)
            self.queue = PatchQueue(
                qdir, self.store, opened.queue, opened.extra, str(self.src), opened.queue_what, self.limit
            )
        self.prepare(["Makefile", *PROBES])  # one pass over the archive for both
        version = require_version(self.read("Makefile"), opened.label)
        self.distro_info, notes = self._describe()
        self.info = tree_info(
            name=name,
            source=str(self.src),
            kind=self.kind,
            version=version,
            found=self.distro_info,
            distro=distro,
            arch=self.arch,
            labels=labels,
            notes=(*notes, *self.late_notes),
            release=self.package_version,
        )

    @classmethod
    def open(cls, req: OpenRequest) -> ArchiveTree:
        return cls(
            req.path,
            cache_dir=req.cache_dir,
            name=req.name,
            distro=req.distro,
            labels=req.labels,
            max_member_bytes=req.max_member_bytes,
            arch=req.arch,
        )

    @abstractmethod
    def _open(self) -> Opened:
        """Find the base tarball (and the patch queue) in the package; called once, after
        ``src``, ``entry`` and ``limit`` are set."""

    def _describe(self) -> tuple[DistroInfo | None, list[str]]:
        """(distro facts, notes) of the package, once its files can be read. Default: what
        the tree's files say, and what the archive's name says (linux-4.19.90-...ctl2.tar.xz)."""
        stem = self.src.name
        for suffix in (".tar", ".tgz", ".txz", ".tbz2"):
            stem = stem.split(suffix, 1)[0]
        return detect(self.read, name=stem, arch=self.arch), []

    @property
    def archive_passes(self) -> int:
        """How many times this view streamed the archive (0 when the cache had everything)."""
        return self.store.passes

    @property
    def patches_applied_now(self) -> int:
        """GNU patch runs made by this view (0 when the applied queue came from the cache)."""
        return self.queue.applied_now if self.queue else 0

    @property
    def wants_paths(self) -> bool:
        return True

    def prepare(self, paths: Iterable[str]) -> None:
        touched = self.queue.touched() if self.queue else set()
        self.store.ensure(p for p in paths if p not in touched)

    def read(self, path: str) -> bytes | None:
        rel = norm_relpath(path)
        if rel is None:
            return None
        try:
            if self.queue is not None and rel in self.queue.touched():
                return self.queue.read(rel)
            return self.store.read(rel)
        except LeadsOut as e:
            self.note(outside_note(e.path))
            return None
