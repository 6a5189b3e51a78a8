"""Decompression as a stream: an external tool when there is one, else Python's modules, and
the byte limit that stops a decompression bomb before it fills memory or the cache."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from patchcheck.errors import TreeError
from patchcheck.sys import proc, progress
from patchcheck.sys.tools import missing_message
from patchcheck.trees._common import MemberTooLarge

BUFSIZE = 1 << 20
_TAIL = 1 << 16

# What a damaged compressed stream raises, whichever decompressor reads it.
READ_ERRORS = (EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile)

# External decompressors: xz decodes a multi-block kernel tarball on every core (about twice
# as fast as Python's lzma here) and runs beside the Python process that parses the tar.
_TOOLS = {
    (".xz", ".txz"): ("xz", "-dc", "-T0"),
    (".gz", ".tgz"): ("gzip", "-dc"),
    (".bz2", ".tbz2"): ("bzip2", "-dc"),
    (".zst", ".tzst"): ("zstd", "-dc"),
}
COMPRESSED_SUFFIXES = tuple(x for k in _TOOLS for x in k)
_MAGIC = {b"\x1f\x8b": ".gz", b"\xfd7zXZ\x00": ".xz", b"BZh": ".bz2", b"\x28\xb5\x2f\xfd": ".zst"}


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class Limited(io.RawIOBase):
    """A read-only stream that raises MemberTooLarge once more than ``limit`` bytes came out."""

    def __init__(self, raw: Readable, limit: int, label: str) -> None:
        self._raw = raw
        self._left = limit
        self._limit = limit
        self._label = label

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        # One byte past the limit is asked for, so that a stream of exactly ``limit`` passes.
        data = self._raw.read(min(len(buf), self._left + 1))
        n = len(data)
        if n > self._left:
            raise MemberTooLarge(self._label, self._limit)
        buf[:n] = data
        self._left -= n
        return n


def read_limited(raw: Readable, limit: int, label: str) -> bytes:
    """All of ``raw``; MemberTooLarge (holding at most ``limit`` + 1 bytes) when larger."""
    data = raw.read(limit + 1)
    if len(data) > limit:
        raise MemberTooLarge(label, limit)
    return data


def _tool_for(name: str) -> tuple[str, ...] | None:
    for suffixes, cmd in _TOOLS.items():
        if name.endswith(suffixes):
            return cmd if shutil.which(cmd[0]) else None
    return None


def suffix_by_magic(head: bytes) -> str:
    """ ".gz", ".xz", ".bz2", ".zst" from a file's first bytes, "" when none."""
    return next((sfx for magic, sfx in _MAGIC.items() if head.startswith(magic)), "")


@contextlib.contextmanager
def open_decompressed(fileobj: IO[bytes], name: str) -> Iterator[IO[bytes]]:
    """The decompressed bytes of ``fileobj``: an external tool by suffix, else Python's own."""
    cmd = _tool_for(name)
    if cmd is not None:
        with _pipe_through(cmd, fileobj) as out:
            yield out
        return
    if name.endswith((".zst", ".tzst")):
        raise TreeError(f"{name}: zstd-compressed; {missing_message('zstd', 'zstd-compressed archives')}")
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
    """The decompressed bytes of a file on disk, by its suffix, else by its magic bytes."""
    with progress.read_file(path) as f:
        name = path.name
        if not name.endswith(COMPRESSED_SUFFIXES):
            # No telling suffix (a tarball found by its content): go by its magic bytes.
            name += suffix_by_magic(f.read(6))
            f.seek(0)
        with open_decompressed(f, name) as raw:
            yield raw
