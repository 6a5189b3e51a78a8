"""Selective, cached extraction of a tar stream: only the members a run asks for.

A kernel tarball holds ~78,000 files; a check reads a few dozen. ``MemberStore.ensure`` streams
the archive once per call and keeps just the missing members it was asked for, under a cache
folder keyed by the archive's hash, and remembers which paths the archive does not have.
"""

from __future__ import annotations

import bz2
import contextlib
import fcntl
import gzip
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from patchcheck.errors import TreeError
from patchcheck.sys import proc
from patchcheck.sys.paths import norm_relpath
from patchcheck.trees._common import load_json, save_json

# Opens the archive and yields its decompressed tar bytes as a stream: each pass re-opens it.
StreamOpener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]

_LINK_DEPTH = 40  # like the kernel's own limit on nested symlinks
_READ_ERRORS = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile)


class _CacheWriteError(Exception):
    """Writing into the cache failed; kept apart from archive read errors."""


class _TopMismatch(Exception):
    """The guessed single top-level folder turned out not to be shared by every member."""


# External decompressors: xz decodes a multi-block kernel tarball on every core (about twice
# as fast as Python's lzma here) and runs beside the Python process that parses the tar.
_TOOLS = {
    (".xz", ".txz"): ("xz", "-dc", "-T0"),
    (".gz", ".tgz"): ("gzip", "-dc"),
    (".bz2", ".tbz2"): ("bzip2", "-dc"),
    (".zst", ".tzst"): ("zstd", "-dc"),
}
_BUFSIZE = 1 << 20
_TAIL = 1 << 16


def _tool_for(name: str) -> tuple[str, ...] | None:
    for suffixes, cmd in _TOOLS.items():
        if name.endswith(suffixes):
            return cmd if shutil.which(cmd[0]) else None
    return None


@contextlib.contextmanager
def open_tar_stream(fileobj: IO[bytes], name: str) -> Iterator[tarfile.TarFile]:
    """A streaming TarFile (for small archives: a .deb's outer data.tar, a debian.tar)."""
    with open_decompressed(fileobj, name) as raw, tarfile.open(fileobj=raw, mode="r|", bufsize=_BUFSIZE) as tf:
        yield tf


_MAGIC = {b"\x1f\x8b": ".gz", b"\xfd7zXZ\x00": ".xz", b"BZh": ".bz2", b"\x28\xb5\x2f\xfd": ".zst"}


@contextlib.contextmanager
def open_decompressed(fileobj: IO[bytes], name: str) -> Iterator[IO[bytes]]:
    """The decompressed bytes of ``fileobj``: an external tool by suffix, else Python's own."""
    cmd = _tool_for(name)
    if cmd is not None:
        with _pipe_through(cmd, fileobj) as out:
            yield out
        return
    if name.endswith((".zst", ".tzst")):
        raise TreeError(f"{name}: zstd-compressed and the zstd tool is not installed")
    # No external tool: Python's own decompressors (about half the speed).
    if name.endswith((".xz", ".txz")):
        with lzma.LZMAFile(fileobj) as xz:
            yield xz
    elif name.endswith((".gz", ".tgz")):
        with gzip.GzipFile(fileobj=fileobj) as gz:
            yield gz  # type: ignore[misc]
    elif name.endswith((".bz2", ".tbz2")):
        with bz2.BZ2File(fileobj) as bz:
            yield bz
    else:
        yield fileobj


@contextlib.contextmanager
def _pipe_through(cmd: tuple[str, ...], source: IO[bytes]) -> Iterator[IO[bytes]]:
    """Stream ``source`` through a filter process (proc.stream: a kernel tarball
    decompresses to well over a gigabyte, too much to buffer)."""
    with proc.stream(cmd, feed=source) as s:
        yield s.stdout
        # Past the tar end there is at most some padding: a short read means the reader got
        # to the end, so the tool's exit status tells whether the data was sound. A full read
        # means the reader stopped early on purpose (it had everything) and the tool is killed.
        tail = s.stdout.read(_TAIL)
        rc = s.wait() if len(tail) < _TAIL else None
        if rc not in (0, None):
            raise lzma.LZMAError(f"{cmd[0]}: {s.err_tail()}")


@contextlib.contextmanager
def file_stream(path: Path) -> Iterator[IO[bytes]]:
    """StreamOpener for a tarball on disk."""
    with open(path, "rb") as f:
        name = path.name
        if not name.endswith(tuple(x for k in _TOOLS for x in k)):
            # No telling suffix (a tarball found by its content): go by its magic bytes.
            head = f.read(6)
            f.seek(0)
            name += next((sfx for magic, sfx in _MAGIC.items() if head.startswith(magic)), "")
        with open_decompressed(f, name) as raw:
            yield raw


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        chunk = stream.read(min(n, _BUFSIZE))
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for large values
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as e:
        raise tarfile.ReadError(f"bad number in tar header: {field!r}") from e


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class RawMember:
    """One tar member; ``read()`` its data before the iteration moves on, or it is skipped."""

    __slots__ = ("name", "type", "linkname", "size", "_stream", "_read")

    def __init__(self, name: str, type_: bytes, linkname: str, size: int, stream: IO[bytes]):
        self.name, self.type, self.linkname, self.size = name, type_, linkname, size
        self._stream = stream
        self._read = 0

    def isfile(self) -> bool:
        return self.type in (b"0", b"\0", b"7")

    def read(self) -> bytes:
        data = _read_exact(self._stream, self.size - self._read)
        self._read = self.size
        if len(data) < self.size:
            raise tarfile.ReadError(f"{self.name}: archive ends inside this member")
        return data


def iter_tar(stream: IO[bytes]) -> Iterator[RawMember]:
    """Walk a tar stream's headers (ustar, pax, GNU long names).

    tarfile's stream mode costs ~18 s of Python time on a 1.4 GB kernel tarball; this needs
    only a header parse per member and bulk reads to skip data.
    """
    pax: dict[str, str] = {}
    long_name = long_link = None
    while True:
        block = _read_exact(stream, 512)
        if not block or block == bytes(512):
            return  # the end marker (or a stream ending at a member boundary)
        if len(block) < 512:
            raise tarfile.ReadError("truncated tar header")
        stored = _number(block[148:156])
        if stored != sum(block[:148]) + 256 + sum(block[156:]):
            raise tarfile.ReadError("bad tar header checksum")
        size = _number(block[124:136])
        type_ = block[156:157]
        name = _text(block[:100])
        if block[257:262] == b"ustar" and (prefix := _text(block[345:500])):
            name = f"{prefix}/{name}"
        linkname = _text(block[157:257])
        if type_ in (b"x", b"g", b"L", b"K"):
            data = _read_exact(stream, (size + 511) // 512 * 512)[:size]
            if len(data) < size:
                raise tarfile.ReadError("truncated tar extended header")
            if type_ == b"x":
                pax = _parse_pax(data)
            elif type_ == b"L":
                long_name = _text(data)
            elif type_ == b"K":
                long_link = _text(data)
            continue
        name = pax.get("path", long_name or name)
        linkname = pax.get("linkpath", long_link or linkname)
        if "size" in pax and pax["size"].isdigit():
            size = int(pax["size"])
        pax, long_name, long_link = {}, None, None
        if type_ in (b"1", b"2", b"5", b"3", b"4", b"6"):
            size = 0  # links, folders and devices carry no data, whatever the header says
        member = RawMember(name, type_, linkname, size, stream)
        yield member
        left = (size + 511) // 512 * 512 - member._read
        while left > 0:
            chunk = stream.read(min(left, _BUFSIZE))
            if not chunk:
                raise tarfile.ReadError(f"{name}: archive ends inside this member")
            left -= len(chunk)


def _parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError as e:
            raise tarfile.ReadError("bad pax header") from e
        if length <= 0:
            break
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _member_name(name: str) -> str | None:
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if not name or name == ".":
        return None
    return norm_relpath(name)


class MemberStore:
    """The extracted members of one archive, in ``root`` (a cache folder).

    ``passes`` counts archive passes made by this object: tests use it to prove cache reuse.
    """

    def __init__(self, root: Path, opener: StreamOpener, label: str) -> None:
        self.root = root
        self.files = root / "files"
        self.label = label
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
        save_json(
            self._state_path,
            {
                "top": self._top,
                "present": sorted(self._present),
                "absent": sorted(self._absent),
                "links": self._links,
            },
        )

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
                self.root.mkdir(parents=True, exist_ok=True)
                with open(self.root / "lock", "a+b") as lock:
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
        rel = norm_relpath(path)
        if rel is None:
            return None
        for _ in range(_LINK_DEPTH):
            self.ensure([rel])
            if rel in self._links:
                target = self._links[rel]
                if target is None:
                    return None
                rel = target
                continue
            if rel not in self._present:
                return None
            try:
                return (self.files / rel).read_bytes()
            except FileNotFoundError:
                # Someone pruned the cache under us: forget the path and extract it again.
                with self._lock:
                    self._present.discard(rel)
                continue
        raise TreeError(f"{self.label}: {path}: symlink loop; expected a readable file")

    # -- one pass over the archive ---------------------------------------------------------
    def _extract(self, missing: set[str]) -> None:
        try:
            try:
                self._scan(missing, self._top)
            except _TopMismatch:
                self._scan(missing, "")
        except _CacheWriteError as e:
            raise TreeError(f"{self.root}: cannot write the cache: {e.__cause__}") from e
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
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix="staging-"))
        found: dict[str, Path] = {}
        links: dict[str, str | None] = {}
        seen_any = False
        try:
            with self._opener() as stream:
                for m in iter_tar(stream):
                    name = _member_name(m.name)
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
                        data = m.read()
                        dest = staging / rel
                        try:
                            dest.parent.mkdir(parents=True, exist_ok=True)
                            dest.write_bytes(data)
                        except OSError as e:
                            raise _CacheWriteError from e
                        found[rel] = dest
                    elif m.type == b"2":
                        links[rel] = _link_target(rel, m.linkname)
                    elif m.type == b"1":
                        # Hard links name another archive member; refer to it like a symlink.
                        target = _member_name(m.linkname)
                        if target is not None and top and target.startswith(top + "/"):
                            target = target[len(top) + 1 :]
                        links[rel] = target
                    # Directories and devices are not files: they count as absent.
                    if top is not None and len(found) + len(links) == len(missing):
                        break  # everything asked for is here: no need to read further
            if not seen_any:
                raise tarfile.ReadError("no members")
            try:
                for rel, src_path in found.items():
                    dest = self.files / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src_path, dest)
            except OSError as e:
                raise _CacheWriteError from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._top = top or ""
        self._present.update(found)
        self._links.update(links)
        self._absent.update(missing - found.keys() - links.keys())


def _link_target(rel: str, linkname: str) -> str | None:
    if linkname.startswith("/"):
        return None  # points outside the tree
    return norm_relpath(posixpath.join(posixpath.dirname(rel), linkname))
