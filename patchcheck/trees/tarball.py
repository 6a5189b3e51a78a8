"""A kernel tarball (.tar, .tar.gz/.tgz, .tar.xz, .tar.bz2, .tar.zst), read without unpacking it."""

from __future__ import annotations

from patchcheck.trees.archive.compress import file_stream
from patchcheck.trees.archive.store import MemberStore
from patchcheck.trees.base import ArchiveTree, Opened
from patchcheck.trees.registry import Kind, register

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst")


class TarballTree(ArchiveTree):
    """Members asked for via ``prepare`` are extracted, in one pass, into the cache."""

    kind = "tarball"
    what = "a kernel tarball"

    def _open(self) -> Opened:
        src = self.src
        store = MemberStore(self.entry / "members", lambda: file_stream(src), str(src), self.limit)
        return Opened(store, str(src))


def _tar_head(head: bytes) -> bool:
    return head.startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"BZh")) or head[257:262] == b"ustar"


register(
    Kind(
        "tarball",
        "a .tar.* tarball",
        TarballTree.open,
        priority=50,
        match_name=lambda path: path.name.lower().endswith(TAR_SUFFIXES),
        match_head=_tar_head,
    )
)
