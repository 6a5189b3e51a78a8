"""The tree interface every source kind implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from patchcheck.model import TreeInfo


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
