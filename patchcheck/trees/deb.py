"""A Debian ``linux-source-X.Y`` .deb: the patched tree is a tarball inside data.tar.

The .deb is read as a stream: ar member ``data.tar.*`` -> ``usr/src/linux-source-*.tar.*`` ->
only the members a run asks for. Nothing is unpacked next to the .deb.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from patchcheck.errors import TreeError
from patchcheck.model import TreeInfo
from patchcheck.sys.atomic import atomic_write
from patchcheck.trees._common import (
    check_user_path,
    content_key,
    entry_dir,
    load_json,
    require_version,
    save_json,
)
from patchcheck.trees._store import MemberStore, open_decompressed, open_tar_stream
from patchcheck.trees.base import TreeView

_INNER = re.compile(r"^(?:\./)?usr/src/(?:[^/]+/)?linux-source-[^/]*\.tar(?:\.\w+)?$")
_CHANGELOG = "usr/share/doc/linux-source-*/changelog.Debian.gz"


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int
    size: int


def ar_members(f: IO[bytes], label: str) -> list[ArMember]:
    """The members of a Unix ar archive (the .deb container); header parsing only."""
    if f.read(8) != b"!<arch>\n":
        raise TreeError(f"{label}: not an ar archive; expected a Debian .deb package")
    members: list[ArMember] = []
    offset = 8
    while True:
        header = f.read(60)
        if not header:
            return members
        if len(header) < 60 or header[58:60] != b"`\n":
            raise TreeError(f"{label}: truncated or corrupt .deb (bad ar header at {offset})")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as e:
            raise TreeError(f"{label}: corrupt .deb (bad ar member size at {offset})") from e
        members.append(ArMember(name, offset + 60, size))
        offset += 60 + size + (size & 1)  # members are 2-byte aligned
        f.seek(offset)


class _Slice(io.RawIOBase):
    """A read-only window onto part of a file: one ar member as a stream."""

    def __init__(self, f: IO[bytes], offset: int, size: int) -> None:
        self._f = f
        self._left = size
        f.seek(offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self._left)
        if n <= 0:
            return 0
        data = self._f.read(n)
        buf[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _member(f: IO[bytes], members: list[ArMember], prefix: str, label: str) -> ArMember:
    for m in members:
        if m.name.startswith(prefix):
            return m
    raise TreeError(f"{label}: no {prefix}* member; expected a Debian .deb package")


def _control(f: IO[bytes], members: list[ArMember], label: str) -> dict[str, str]:
    m = _member(f, members, "control.tar", label)
    stream = io.BufferedReader(_Slice(f, m.offset, m.size))
    fields: dict[str, str] = {}
    try:
        with open_tar_stream(stream, m.name) as tf:
            for ti in tf:
                if ti.name.lstrip("./") == "control" and ti.isfile():
                    data = tf.extractfile(ti)
                    text = data.read().decode("utf-8", "replace") if data else ""
                    for line in text.splitlines():
                        key, sep, value = line.partition(":")
                        if sep and not line[:1].isspace():
                            fields[key.strip()] = value.strip()
                    break
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise TreeError(f"{label}: corrupt control.tar in .deb ({e})") from e
    return fields


class DebTree(TreeView):
    def __init__(
        self,
        path: Path,
        *,
        cache_dir: Path,
        name: str,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.src = check_user_path(path, "a Debian linux-source .deb")
        self.entry = entry_dir(cache_dir, "deb", content_key(self.src, cache_dir))
        control = load_json(self.entry / "control.json")
        if not isinstance(control, dict):
            try:
                with open(self.src, "rb") as f:
                    control = _control(f, ar_members(f, str(self.src)), str(self.src))
            except OSError as e:
                raise TreeError(f"{self.src}: cannot read ({e.strerror or e})") from e
            save_json(self.entry / "control.json", control)
        self.store = MemberStore(self.entry / "members", self._open_inner, str(self.src))
        version = require_version(self.store.read("Makefile"), str(self.src))
        deb_version = str(control.get("Version") or "") or None
        self.info = TreeInfo(
            name=name,
            source=str(self.src),
            kind="deb",
            version=version,
            distro=distro or ("ubuntu" if deb_version and "ubuntu" in deb_version else "debian"),
            release=deb_version,
            labels=dict(labels or {}),
            notes=(f"package {control.get('Package', '?')} {deb_version or '?'}",),
        )

    @contextlib.contextmanager
    def _open_inner(self) -> Iterator[IO[bytes]]:
        """StreamOpener: walks data.tar to the inner kernel tarball, saving the changelog."""
        label = str(self.src)
        with open(self.src, "rb") as f:
            data = _member(f, ar_members(f, label), "data.tar", label)
            stream = io.BufferedReader(_Slice(f, data.offset, data.size), 1 << 20)
            with open_tar_stream(stream, data.name) as outer:
                inner_found = False
                for ti in outer:
                    name = ti.name[2:] if ti.name.startswith("./") else ti.name
                    if ti.isfile() and fnmatch.fnmatch(name, _CHANGELOG):
                        self._save_changelog(outer.extractfile(ti))
                    elif ti.isfile() and _INNER.match(name) and not inner_found:
                        inner_found = True
                        raw = outer.extractfile(ti)
                        assert raw is not None
                        with open_decompressed(raw, name) as inner:
                            yield inner
                        if self._changelog_known():
                            return
                if not inner_found:
                    raise TreeError(
                        f"{label}: no usr/src/linux-source-*.tar.* inside; expected a Debian linux-source .deb"
                    )
        self._mark_no_changelog()

    def _save_changelog(self, raw: IO[bytes] | None) -> None:
        if raw is None:
            return
        try:
            text = gzip.decompress(raw.read())
        except (OSError, EOFError, zlib.error):
            return  # a damaged changelog is not worth failing the tree for
        atomic_write(self.entry / "changelog", text)

    def _changelog_known(self) -> bool:
        return (self.entry / "changelog").exists() or (self.entry / "changelog.none").exists()

    def _mark_no_changelog(self) -> None:
        if not self._changelog_known():
            atomic_write(self.entry / "changelog.none", b"")

    @property
    def archive_passes(self) -> int:
        return self.store.passes

    def prepare(self, paths: Iterable[str]) -> None:
        self.store.ensure(paths)

    def read(self, path: str) -> bytes | None:
        return self.store.read(path)

    def changelog(self) -> str | None:
        try:
            return (self.entry / "changelog").read_text("utf-8", "replace")
        except OSError:
            return None
