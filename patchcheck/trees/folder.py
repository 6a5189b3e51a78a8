"""A plain kernel source folder, read in place."""

from __future__ import annotations

from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.model import TreeInfo
from patchcheck.trees._common import check_user_path, read_under, require_version
from patchcheck.trees.base import OpenRequest, TreeView
from patchcheck.trees.registry import Kind, register


class FolderTree(TreeView):
    """Reads files straight from the folder; nothing is copied or written."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
        kind: str = "folder",
        notes: tuple[str, ...] = (),
    ) -> None:
        self.root = check_user_path(path, "a kernel source folder")
        if not self.root.is_dir():
            raise TreeError(f"{self.root}: not a folder; expected a kernel source folder")
        version = require_version(self.read("Makefile"), str(self.root))
        self.info = TreeInfo(
            name=name,
            source=str(self.root),
            kind=kind,
            version=version,
            distro=distro,
            labels=dict(labels or {}),
            notes=notes,
        )

    def read(self, path: str) -> bytes | None:
        return read_under(self.root, path, str(self.root))


def _open(req: OpenRequest) -> FolderTree:
    return FolderTree(req.path, name=req.name, distro=req.distro, labels=req.labels)


# Any folder that is not a git checkout: asked last.
register(Kind("folder", "a source folder", _open, priority=90, match_dir=lambda path: True))
