"""Helpers shared by the tree kinds: path checks, reads beneath a root, the member limit,
cache writes that say what failed, Makefile version, cache keys."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from patchcheck.errors import TreeError
from patchcheck.sys import progress
from patchcheck.sys.atomic import atomic_write
from patchcheck.sys.lastuse import mark_used
from patchcheck.sys.paths import (
    OutsideRoot,
    TooLarge,
    UnsafePath,
    norm_relpath,
    read_beneath,
    read_regular,
    resolve_beneath,
)
from patchcheck.text.units import format_size

DEFAULT_MAX_MEMBER_BYTES = 512 << 20
LIMIT_HELP = "raise the limit with --max-member-bytes or PATCHCHECK_MAX_MEMBER_BYTES"


class MemberTooLarge(TreeError):
    """A file or archive member (as declared, or as it inflates) is over ``--max-member-bytes``."""

    def __init__(self, label: str, limit: int) -> None:
        super().__init__(
            f"{label}: larger than the {format_size(limit)} limit per member (a decompression bomb?); {LIMIT_HELP}"
        )
        self.limit = limit


def check_size(size: int, limit: int, label: str) -> None:
    if size > limit:
        raise MemberTooLarge(label, limit)


class LeadsOut(Exception):
    """A symlink in the tree leads out of it: never followed, the path reads as absent."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def outside_note(path: str) -> str:
    return f"{path}: a symlink leading out of the tree; read as absent"


@contextlib.contextmanager
def writing(path: Path | str, what: str) -> Iterator[None]:
    """Turn a failed cache write (disk full, read-only cache) into one line naming the file
    and what was being written."""
    try:
        yield
    except OSError as e:
        where = e.filename or path
        raise TreeError(f"{where}: cannot write {what} into the cache ({e.strerror or e})") from e


def check_user_path(path: Path, what: str) -> Path:
    """Absolute path of a user's file/folder; TreeError for missing, loop, unreadable, or
    anything that is neither (a FIFO would block the first read for ever)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise TreeError(_os_message(path, e, what)) from e
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise TreeError(f"{path}: not a regular file or folder; expected {what}")
    if not os.access(path, os.R_OK):
        raise TreeError(f"{path}: not readable (permission denied); expected {what}")
    return Path(os.path.abspath(path))


def _os_message(path: Path | str, e: OSError, what: str) -> str:
    if e.errno == errno.ELOOP:
        return f"{path}: symlink loop; expected {what}"
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        if os.path.islink(path):
            return f"{path}: dangling symlink; expected {what}"
        return f"{path}: no such file or folder; expected {what}"
    if e.errno == errno.EACCES:
        return f"{path}: not readable (permission denied); expected {what}"
    return f"{path}: {e.strerror or e}; expected {what}"


def read_user_file(path: Path, what: str) -> bytes:
    try:
        return read_regular(path)
    except OSError as e:
        raise TreeError(_os_message(path, e, what)) from e


def read_in_tree(root: Path, rel: str, label: str, limit: int) -> bytes | None:
    """Bytes of the file ``rel`` beneath ``root``; None when absent or a folder. Symlinks are
    followed while they stay inside ``root``; one that leads out raises LeadsOut.

    A loop, a FIFO or socket, or a permission problem is the user's to fix: a TreeError.
    """
    norm = norm_relpath(rel)
    if norm is None:
        return None
    where = f"{label}: {norm}"
    try:
        data = read_beneath(root, norm, limit=limit)
        if data is None and _special(root, norm):
            raise TreeError(f"{where}: not a regular file; expected a readable file of the tree")
    except OutsideRoot as e:
        if e.errno == errno.ELOOP:
            raise TreeError(f"{where}: symlink loop; expected a readable file") from e
        raise LeadsOut(norm) from e
    except TooLarge as e:
        raise MemberTooLarge(where, limit) from e
    except UnsafePath:
        return None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            return None
        raise TreeError(_os_message(where, e, "a readable file of the tree")) from e
    return data


def _special(root: Path, rel: str) -> bool:
    """True when ``rel`` (resolved beneath ``root``) is there but neither a file nor a folder."""
    try:
        st = os.lstat(root / resolve_beneath(root, rel))
    except OSError:
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode))


_MAKE_VAR = re.compile(rb"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)[ \t]*$", re.M)


def makefile_version(data: bytes | None) -> str | None:
    """VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION from a top Makefile; None if not a kernel one."""
    if data is None:
        return None
    found: dict[bytes, bytes] = {}
    for m in _MAKE_VAR.finditer(data):
        found.setdefault(m.group(1), m.group(2))
    if not found.get(b"VERSION"):
        return None
    parts = [found[b"VERSION"]]
    for key in (b"PATCHLEVEL", b"SUBLEVEL"):
        if found.get(key):
            parts.append(found[key])
    return (b".".join(parts) + found.get(b"EXTRAVERSION", b"")).decode("ascii", "replace")


def require_version(data: bytes | None, source: str) -> str:
    version = makefile_version(data)
    if version is None:
        why = "has no top-level Makefile" if data is None else "its Makefile has no 'VERSION ='"
        raise TreeError(f"{source}: not a kernel tree ({why}); expected a kernel source tree")
    return version


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def save_json(path: Path, value: Any, what: str) -> None:
    with writing(path, what):
        atomic_write(path, json.dumps(value, sort_keys=True).encode())


def content_key(path: Path, cache_dir: Path) -> str:
    """sha256 of a user's file; remembered by (path, size, mtime, inode) so it is hashed once."""
    st = os.stat(path)
    fast = hashlib.sha256(
        f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode()
    ).hexdigest()
    index = cache_dir / "keys" / fast
    try:
        known = index.read_text("ascii").strip()
        if re.fullmatch(r"[0-9a-f]{64}", known):
            return known
    except OSError:
        pass
    h = hashlib.sha256()
    try:
        with progress.read_file(path, "hashing") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:
        raise TreeError(_os_message(path, e, "a readable file")) from e
    digest = h.hexdigest()
    with writing(index, f"the content key of {path}"):
        atomic_write(index, digest.encode())
    return digest


def entry_dir(cache_dir: Path, kind: str, key: str) -> Path:
    d = cache_dir / f"{kind}-{key}"
    with writing(d, f"the {kind} cache folder"):
        d.mkdir(parents=True, exist_ok=True)
    mark_used(d)  # for cache prune --older-than
    return d
