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
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO

from patchcheck.errors import TreeError
from patchcheck.sys import progress
from patchcheck.sys.atomic import atomic_file, atomic_write
from patchcheck.trees._common import check_size, load_json, save_json, writing
from patchcheck.trees.archive.compress import BUFSIZE, READ_ERRORS, Limited, open_decompressed
from patchcheck.trees.archive.store import MemberStore
from patchcheck.trees.archive.tar import RawMember, TarError, iter_tar
from patchcheck.trees.base import ArchiveTree, Opened
from patchcheck.trees.distro import DistroInfo, from_debian_changelog
from patchcheck.trees.registry import Kind, register

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


def _member(members: list[ArMember], prefix: str, label: str) -> ArMember:
    for m in members:
        if m.name.startswith(prefix):
            return m
    raise TreeError(f"{label}: no {prefix}* member; expected a Debian .deb package")


@contextlib.contextmanager
def _ar_tar(f: IO[bytes], m: ArMember) -> Iterator[Iterator[RawMember]]:
    """The tar members of ar member ``m`` (control.tar.*, data.tar.*), as a stream."""
    stream = io.BufferedReader(_Slice(f, m.offset, m.size), 1 << 20)
    with open_decompressed(stream, m.name) as raw:
        yield iter_tar(raw)


def _strip_dot(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _control(f: IO[bytes], members: list[ArMember], label: str, limit: int) -> dict[str, str]:
    m = _member(members, "control.tar", label)
    fields: dict[str, str] = {}
    try:
        with _ar_tar(f, m) as tar:
            for ti in tar:
                if _strip_dot(ti.name) == "control" and ti.isfile():
                    check_size(ti.size, limit, f"{label}: control.tar: control")
                    text = ti.read().decode("utf-8", "replace")
                    for line in text.splitlines():
                        key, sep, value = line.partition(":")
                        if sep and not line[:1].isspace():
                            fields[key.strip()] = value.strip()
                    break
    except (TarError, OSError, *READ_ERRORS) as e:
        raise TreeError(f"{label}: corrupt control.tar in .deb ({e})") from e
    return fields


class DebTree(ArchiveTree):
    kind = "deb"
    what = "a Debian linux-source .deb"

    def _open(self) -> Opened:
        control = load_json(self.entry / "control.json")
        if not isinstance(control, dict):
            try:
                with open(self.src, "rb") as f:
                    control = _control(f, ar_members(f, str(self.src)), str(self.src), self.limit)
            except OSError as e:
                raise TreeError(f"{self.src}: cannot read ({e.strerror or e})") from e
            save_json(self.entry / "control.json", control, f"the control fields of {self.src}")
        self.control: dict[str, str] = control
        self.package_version = str(control.get("Version") or "") or None
        store = MemberStore(self.entry / "members", self._open_inner, str(self.src), self.limit)
        return Opened(store, str(self.src))

    def _describe(self) -> tuple[DistroInfo | None, list[str]]:
        deb_version = self.package_version
        notes = [f"package {self.control.get('Package', '?')} {deb_version or '?'}"]
        log = self.changelog()
        found = from_debian_changelog(log, path="changelog.Debian.gz") if log else None
        if found is not None and deb_version:
            found = replace(found, version=deb_version)  # the binary's own (a binNMU adds +bN)
        if found is None:
            distro = "ubuntu" if deb_version and "ubuntu" in deb_version else "debian"
            found = DistroInfo(distro, "debian", version=deb_version, evidence="package version")
        return found, notes

    @contextlib.contextmanager
    def _open_inner(self) -> Iterator[IO[bytes]]:
        """StreamOpener: walks data.tar to the inner kernel tarball, saving the changelog."""
        label = str(self.src)
        with progress.read_file(self.src) as f:
            data = _member(ar_members(f, label), "data.tar", label)
            with _ar_tar(f, data) as outer:
                inner_found = False
                for ti in outer:
                    name = _strip_dot(ti.name)
                    if ti.isfile() and fnmatch.fnmatch(name, _CHANGELOG):
                        self._save_changelog(ti, name)
                    elif ti.isfile() and _INNER.match(name) and not inner_found:
                        inner_found = True
                        raw = io.BufferedReader(_MemberReader(ti), 1 << 20)
                        with open_decompressed(raw, name) as inner:
                            yield inner
                        if self._changelog_known():
                            return
                if not inner_found:
                    raise TreeError(
                        f"{label}: no usr/src/linux-source-*.tar.* inside; expected a Debian linux-source .deb"
                    )
        self._mark_no_changelog()

    def _save_changelog(self, member: RawMember, name: str) -> None:
        """Inflate the changelog into the cache as a stream: a bomb stops at the member limit
        (MemberTooLarge) and leaves nothing behind."""
        dest = self.entry / "changelog"
        label = f"{self.src}: {name}"
        with writing(dest, f"the changelog of {self.src}"):
            try:
                with (
                    atomic_file(dest) as out,
                    gzip.GzipFile(fileobj=io.BufferedReader(_MemberReader(member), BUFSIZE)) as gz,
                ):
                    limited = Limited(gz, self.limit, label)
                    while chunk := limited.read(BUFSIZE):
                        out.write(chunk)
            except READ_ERRORS:
                return  # a damaged changelog is not worth failing the tree for

    def _changelog_known(self) -> bool:
        return (self.entry / "changelog").exists() or (self.entry / "changelog.none").exists()

    def _mark_no_changelog(self) -> None:
        if not self._changelog_known():
            with writing(self.entry / "changelog.none", f"a mark that {self.src} has no changelog"):
                atomic_write(self.entry / "changelog.none", b"")

    def changelog(self) -> str | None:
        try:
            return (self.entry / "changelog").read_text("utf-8", "replace")
        except OSError:
            return None


class _MemberReader(io.RawIOBase):
    """A tar member's data as a stream (the inner tarball of data.tar)."""

    def __init__(self, member: RawMember) -> None:
        self._m = member

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._m.read_some(len(buf))
        buf[: len(data)] = data
        return len(data)


register(
    Kind(
        "deb",
        "a linux-source .deb",
        DebTree.open,
        priority=40,
        match_name=lambda path: path.name.lower().endswith(".deb"),
        match_head=lambda head: head.startswith(b"!<arch>\n"),
    )
)
