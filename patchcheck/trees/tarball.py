"""A kernel tarball (.tar, .tar.gz/.tgz, .tar.xz, .tar.bz2), read without unpacking it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from patchcheck.model import TreeInfo
from patchcheck.trees._common import check_user_path, content_key, entry_dir, require_version
from patchcheck.trees._store import MemberStore, file_stream
from patchcheck.trees.base import TreeView

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst")


class TarballTree(TreeView):
    """Members asked for via ``prepare`` are extracted, in one pass, into the cache."""

    def __init__(
        self,
        path: Path,
        *,
        cache_dir: Path,
        name: str,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        src = check_user_path(path, "a kernel tarball")
        key = content_key(src, cache_dir)
        self.store = MemberStore(
            entry_dir(cache_dir, "tarball", key) / "members", lambda: file_stream(src), str(src)
        )
        version = require_version(self.store.read("Makefile"), str(src))
        self.info = TreeInfo(
            name=name,
            source=str(src),
            kind="tarball",
            version=version,
            distro=distro,
            labels=dict(labels or {}),
        )

    @property
    def archive_passes(self) -> int:
        """How many times this view streamed the archive (0 when the cache had everything)."""
        return self.store.passes

    def prepare(self, paths: Iterable[str]) -> None:
        self.store.ensure(paths)

    def read(self, path: str) -> bytes | None:
        return self.store.read(path)
