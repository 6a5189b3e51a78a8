"""The tree interface every source kind implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TreeInfo:
    """A tree's identity, shown in every report row."""

    name: str  # the trees.toml name, or the path as given
    source: str  # absolute path of the file/folder
    kind: str  # folder | git | tarball | deb | srpm | dsc
    version: str | None = None  # from the Makefile: VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION
    distro: str | None = None
    release: str | None = None  # package release, e.g. 4.19.90-52.39.v2207.ky10
    labels: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # e.g. "work tree is dirty", "applied 1234 spec patches"


class TreeView(ABC):
    """A read-only kernel source tree.

    ``prepare`` is called once with every path a run may read (all bugs are known up front),
    so archive-backed trees can extract just those members in a single pass.
    """

    info: TreeInfo

    def prepare(self, paths: Iterable[str]) -> None:  # noqa: B027 - optional hook
        """Hint: these paths will be read. Default: nothing to do."""

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
        """A distro changelog shipped with the tree (Debian changelog, RPM %changelog)."""
        return None
