"""Atomic file writes: every cache file and every output the user asked for is written here,
so a killed or failed run (a full disk) never leaves half a file where the old one was."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from patchcheck.errors import BadInput
from patchcheck.sys.paths import is_within


@contextlib.contextmanager
def atomic_file(
    path: Path, prefix: str = ".tmp-", *, durable: bool = False, mode: int | None = None
) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` (via rename) only when the block ends cleanly;
    on any failure the temp file is removed and ``path`` is left as it was.

    ``durable``: the data (and the rename) reach the disk before this returns, so a crash
    right after cannot leave an empty file. ``mode``: the file's permission bits (else the
    temp file's 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write(path: Path, data: bytes, prefix: str = ".tmp-") -> None:
    with atomic_file(path, prefix) as f:
        f.write(data)


def replace_file(path: Path, data: bytes) -> None:
    """Write an output the user named (``-o``): a temp file in the same folder, fsync'd,
    renamed over ``path``; a file that was there keeps its mode (and owner, when we may).
    A symlink is written through (the link stays); a device or FIFO (``-o /dev/stdout``)
    is written directly: renaming over it would replace the device node itself. The
    folder must exist. Any failure leaves the old file and raises ``BadInput`` naming
    ``path``."""
    target = Path(os.path.realpath(path))
    try:
        try:
            st: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(21, "is a folder")
            with open(target, "wb") as f:
                f.write(data)
            return
        if not target.parent.is_dir():
            raise FileNotFoundError(2, "no such folder")
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
        with atomic_file(target, f".{target.name[:40]}.tmp-", durable=True, mode=mode) as f:
            f.write(data)
        if st is not None and os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            with contextlib.suppress(OSError):
                os.chown(target, st.st_uid, st.st_gid)
    except OSError as e:
        raise BadInput(f"{path}: cannot write the output: {e.strerror or e}") from e


def _umask() -> int:
    """The process umask, read without setting it (os.umask would change it for every
    thread for a moment)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def refuse_overwrite(output: Path, inputs: Iterable[tuple[Path, str]]) -> None:
    """``BadInput`` when writing ``output`` would overwrite one of ``inputs`` (path, what
    it is) or put a file inside an input folder (the tree, the bugs folder, the cache):
    the same file by any name (symlink, hard link) or a path beneath it."""
    for path, what in inputs:
        if not os.path.lexists(path):
            continue
        same = is_within(output, path) if os.path.isdir(path) else _same_file(output, path)
        if same:
            raise BadInput(f"-o {output}: that is {what} ({path}); refusing to overwrite an input")


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
