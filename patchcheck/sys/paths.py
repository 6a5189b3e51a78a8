"""The path gate: every path named by a mail, an archive or a tree goes through here.

Such paths come from strangers. They are normalised and refused when absolute, climbing
(``..``), empty or holding NUL; files beneath a root are reached by walking the root one
component at a time with ``O_NOFOLLOW`` and resolving symlinks here, so that no link (planted
by a patch, an archive member or a stranger's checkout) can lead a read or a write outside
the root. Links that stay inside the root are followed, as ``git cat-file --follow-symlinks``
does for a ``--rev`` read, so every tree kind sees the same files. (A read may first open the
path in one call: it is kept only when the kernel's name for the open file is the path
itself, i.e. no link was met on the way.)
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

MAX_LINKS = 40  # symlinks followed while resolving one path (the kernel's own limit)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A path from untrusted input that is absolute, climbs out, is empty or holds NUL."""


class OutsideRoot(OSError):
    """A symlink beneath the root leads outside it (or loops): it is never followed."""


class TooLarge(OSError):
    """A file is larger than the limit the caller set."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes", path)
        self.limit = limit


class NotRegular(OSError):
    """A FIFO, socket, device or folder where a regular file was expected."""


class _Folder(IsADirectoryError, NotRegular):
    """A folder: both, so callers may tell it apart or not."""


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (a file the user named, or one of our cache).
    Opened non-blocking, so a FIFO never stalls; NotRegular for anything else (a folder is
    also an IsADirectoryError); TooLarge past ``limit``, checked before reading and again
    while reading (the file may grow)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _Folder(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return _read_fd(fd, st.st_size, limit, str(path))


def _read_fd(fd: int, size: int, limit: int | None, name: str) -> bytes:
    """The bytes of the open regular file ``fd`` (``size`` by its fstat), which is closed;
    TooLarge past ``limit``, checked before reading and again while reading (it may grow)."""
    with open(fd, "rb", closefd=True) as f:
        if limit is None:
            return f.read()
        if size > limit:
            raise TooLarge(name, limit)
        data = f.read(size + 1)  # not a buffer of ``limit``
        if len(data) > size:  # it grew since fstat
            data += f.read(limit + 1 - len(data))
        if len(data) > limit:
            raise TooLarge(name, limit)
        return data


def norm_relpath(path: str) -> str | None:
    """``path`` in canonical relative form, or None when it is absolute, climbs out, is empty
    or holds a NUL or a backslash."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return None
    norm = posixpath.normpath(path)
    if norm in (".", "", "..") or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


def clean_relpath(path: str, what: str) -> str:
    """``norm_relpath`` or UnsafePath naming ``what`` (the mail, archive or tree it came from)."""
    norm = norm_relpath(path)
    if norm is None:
        raise UnsafePath(f"{what}: unsafe path {path!r} (absolute, '..', empty or NUL); expected a relative path")
    return norm


def is_within(path: Path, root: Path) -> bool:
    """True when ``path`` (resolved) is ``root`` or beneath it."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    return True


@contextmanager
def _dirfd(path: str | os.PathLike[str]) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def resolve_beneath(root: Path, rel: str) -> str:
    """The canonical relative path that ``rel`` names beneath ``root`` once symlinks inside
    the root are followed. OutsideRoot when a link leads out (absolute target, too many
    ``..``) or loops; UnsafePath when ``rel`` itself is unsafe. The final target may not
    exist (the caller's open says so)."""
    todo = clean_relpath(rel, str(root)).split("/")
    done: list[str] = []
    links = 0
    with _dirfd(root) as rfd:
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise OutsideRoot(errno.EXDEV, "symlink leads outside the tree", rel)
                done.pop()
                continue
            cur = "/".join([*done, part])
            try:
                st = os.lstat(cur, dir_fd=rfd)
            except (FileNotFoundError, NotADirectoryError):
                # nothing to follow past here: what is left is resolved by name alone
                rest = norm_relpath("/".join([*done, part, *todo]))
                if rest is None:
                    raise OutsideRoot(errno.EXDEV, "symlink leads outside the tree", rel) from None
                return rest
            if not stat.S_ISLNK(st.st_mode):
                done.append(part)
                continue
            links += 1
            if links > MAX_LINKS:
                raise OutsideRoot(errno.ELOOP, "symlink loop", rel)
            target = os.readlink(cur, dir_fd=rfd)
            if target.startswith("/") or "\0" in target:
                raise OutsideRoot(errno.EXDEV, "symlink leads outside the tree", rel)
            todo = [p for p in target.split("/") if p] + todo
    if not done:
        raise OutsideRoot(errno.EXDEV, "symlink leads outside the tree", rel)
    return "/".join(done)


def _walk(rfd: int, parts: list[str], create: bool) -> int:
    """An fd of the folder ``parts`` beneath ``rfd``, never through a symlink."""
    fd = os.dup(rfd)
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise UnsafePath(f"unsafe path component {part!r}")
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_real_roots: dict[str, str] = {}
_proc_fds = os.path.isdir("/proc/self/fd")  # Linux: the kernel's name of an open file


def _open_direct(root: Path, rel: str) -> int | None:
    """``rel`` (clean) opened in one call, when the kernel's name for the open file shows
    that no symlink was met on the way (the file is then exactly ``root/rel``); else None,
    and the component-wise walk decides. Most tree files are read this way: the walk costs
    a dozen system calls a file."""
    if not _proc_fds:
        return None
    real = _real_roots.get(str(root))
    if real is None:
        real = _real_roots[str(root)] = os.path.realpath(root)
    want = f"{real}/{rel}"
    try:
        fd = os.open(want, _READ_FLAGS)
    except OSError:
        return None
    try:
        if os.readlink(f"/proc/self/fd/{fd}") == want:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def read_beneath(root: Path, rel: str, *, limit: int | None = None, follow: bool = True) -> bytes | None:
    """Bytes of the regular file ``rel`` beneath ``root``; None when there is none (absent, a
    folder, a FIFO or device). Symlinks inside the root are followed when ``follow``; one that
    leads out raises OutsideRoot, and with ``follow=False`` any symlink reads as absent.
    Opened non-blocking: a FIFO never stalls the read."""
    target = clean_relpath(rel, str(root))
    fd = _open_direct(root, target)
    if fd is None:
        if follow:
            target = resolve_beneath(root, rel)
        *dirs, name = target.split("/")
        try:
            with _dirfd(root) as rfd:
                dfd = _walk(rfd, dirs, create=False)
                try:
                    fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
                finally:
                    os.close(dfd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP):
                return None  # ELOOP: a symlink met with follow=False (or swapped in meanwhile)
            raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return _read_fd(fd, st.st_size, limit, target)


def write_beneath(root: Path, rel: str, data: bytes) -> None:
    """Write ``data`` to ``rel`` beneath ``root``, creating folders; whatever was at ``rel``
    (a file or a symlink) is replaced, never written through."""
    target = clean_relpath(rel, str(root))
    *dirs, name = target.split("/")
    with _dirfd(root) as rfd:
        dfd = _walk(rfd, dirs, create=True)
        try:
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dfd)
            fd = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd
            )
        finally:
            os.close(dfd)
    with open(fd, "wb", closefd=True) as f:
        f.write(data)


def unlink_beneath(root: Path, rel: str) -> bool:
    """Remove the file or symlink ``rel`` beneath ``root`` (a link itself, never its
    target); False when there was none."""
    target = clean_relpath(rel, str(root))
    *dirs, name = target.split("/")
    try:
        with _dirfd(root) as rfd:
            dfd = _walk(rfd, dirs, create=False)
            try:
                os.unlink(name, dir_fd=dfd)
            finally:
                os.close(dfd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EISDIR):
            return False
        raise
    return True
