"""A plain kernel source folder, read in place."""

from __future__ import annotations

from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.trees._common import (
    DEFAULT_MAX_MEMBER_BYTES,
    LeadsOut,
    check_user_path,
    outside_note,
    read_in_tree,
    require_version,
)
from patchcheck.trees.base import OpenRequest, TreeView, resolve_arch, tree_info
from patchcheck.trees.distro import detect
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
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
        arch: str | None = None,
    ) -> None:
        self.root = check_user_path(path, "a kernel source folder")
        self.limit = max_member_bytes
        if not self.root.is_dir():
            raise TreeError(f"{self.root}: not a folder; expected a kernel source folder")
        version = require_version(self.read("Makefile"), str(self.root))
        arch = resolve_arch(arch)
        self.distro_info = detect(self.read, name=self.root.name, arch=arch)
        self.info = tree_info(
            name=name,
            source=str(self.root),
            kind=kind,
            version=version,
            found=self.distro_info,
            distro=distro,
            arch=arch,
            labels=labels,
            notes=(*notes, *self.late_notes),
        )

    def read(self, path: str) -> bytes | None:
        # A symlink leading out of the folder is not read (as ``--rev`` on a git tree does not).
        try:
            return read_in_tree(self.root, path, str(self.root), self.limit)
        except LeadsOut as e:
            self.note(outside_note(e.path))
            return None


def _open(req: OpenRequest) -> FolderTree:
    return FolderTree(
        req.path,
        name=req.name,
        distro=req.distro,
        labels=req.labels,
        max_member_bytes=req.max_member_bytes,
        arch=req.arch,
    )


# Any folder that is not a git checkout: asked last.
register(Kind("folder", "a source folder", _open, priority=90, match_dir=lambda path: True))
