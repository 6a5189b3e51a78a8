"""Real Debian ``linux-source-6.1`` trees and the per-file diffs between two of them.

Shared by the integration test (tests/integration/) and the benchmark (bench/run.py), so both
grade exactly the same real patches. Everything is cached under ``PATCHCHECK_TEST_DATA``
(default ``~/.cache/patchcheck-test-data``): the .debs, one extracted tree per version (a
marker written last, so a killed extraction is redone) and the diff set of a version pair.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PACKAGE = "linux-source-6.1"
# the versions the issues name; any two adjacent ones make a realistic stable-update delta
VERSIONS = ("6.1.170-3", "6.1.176-1", "6.1.187-1", "6.1.190-1", "6.1.192-2")
DEFAULT_PAIR = ("6.1.190-1", "6.1.192-2")
_MARKER = ".patchcheck-extracted"
# a neutral git: the user's diff.renames / external diff drivers must not shape the patches
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


class PIServerLike(Protocol):
    """What publish() needs of tests/pi_server.PIServer."""

    def add_thread(self, mbox: bytes, msgids: Iterable[str] | None = None) -> None: ...


class Unavailable(Exception):
    """The real trees cannot be had here (no apt-get, no such version, no network)."""


@dataclass(frozen=True)
class FileDiff:
    """One changed file as a git patch with a/ b/ repo-relative paths."""

    path: str
    diff: bytes


@dataclass(frozen=True)
class RealPair:
    old_version: str
    new_version: str
    old: Path  # extracted tree roots
    new: Path
    old_deb: Path
    new_deb: Path
    diffs: list[FileDiff]  # every modified .c/.h file, text only, sorted by path


def data_dir() -> Path:
    d = Path(os.environ.get("PATCHCHECK_TEST_DATA") or Path.home() / ".cache" / "patchcheck-test-data")
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _locked(d: Path) -> Iterator[None]:
    # the test and the bench may run at once: one downloader/extractor at a time
    with open(d / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def deb_name(version: str) -> str:
    return f"{PACKAGE}_{version}_all.deb"


def _run(args: list[str], cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{args[0]}: {e}") from e


def _has_candidates() -> bool:
    cp = _run(["apt-cache", "policy", PACKAGE], timeout=60)
    return cp.returncode == 0 and bool(re.search(r"Candidate:\s*(?!\(none\))\S", cp.stdout))


def download(version: str) -> Path:
    """The package's .deb in the data folder, fetched with ``apt-get download`` once."""
    d = data_dir()
    deb = d / deb_name(version)
    if deb.is_file() and deb.stat().st_size > 0:
        return deb
    if shutil.which("apt-get") is None:
        raise Unavailable("apt-get is not installed")
    with _locked(d):
        if deb.is_file() and deb.stat().st_size > 0:
            return deb
        if not _has_candidates():
            # a fresh machine has empty package lists; one update fills them
            _run(["apt-get", "update", "-qq"], timeout=600)
        cp = _run(["apt-get", "download", "-q", f"{PACKAGE}={version}"], cwd=d)
        if cp.returncode != 0 or not deb.is_file():
            msg = (cp.stderr.strip().splitlines() or [f"exit {cp.returncode}"])[-1]
            raise Unavailable(f"apt-get download {PACKAGE}={version}: {msg}")
    return deb


def extract(version: str) -> Path:
    """The kernel tree inside the .deb, extracted once into ``<data>/tree-<version>``."""
    d = data_dir()
    root = d / f"tree-{version}"
    if (root / _MARKER).is_file():
        return root
    deb = download(version)
    with _locked(d):
        if (root / _MARKER).is_file():
            return root
        shutil.rmtree(root, ignore_errors=True)  # a half-done earlier try
        root.mkdir()
        inner = d / f".inner-{version}.tar.xz"
        # data.tar -> usr/src/linux-source-6.1.tar.xz -> the tree (one top folder, stripped)
        cmd = (
            f"dpkg-deb --fsys-tarfile {_q(deb)} | tar -xO --wildcards "
            f"'*usr/src/linux-source-*.tar.xz' > {_q(inner)}"
        )
        cp = _run(["bash", "-o", "pipefail", "-c", cmd])
        if cp.returncode != 0 or not inner.is_file() or inner.stat().st_size == 0:
            inner.unlink(missing_ok=True)
            raise Unavailable(f"{deb}: no inner kernel tarball ({cp.stderr.strip()[-200:]})")
        cp = _run(["tar", "-xJf", str(inner), "-C", str(root), "--strip-components=1"])
        inner.unlink(missing_ok=True)
        if cp.returncode != 0 or not (root / "Makefile").is_file():
            raise Unavailable(f"{deb}: extraction failed ({cp.stderr.strip()[-200:]})")
        (root / _MARKER).write_text(version + "\n")
    return root


def _q(p: Path) -> str:
    return "'" + str(p).replace("'", "'\\''") + "'"


_SECTION = re.compile(rb"^diff --git ", re.M)


def _split_sections(diff: bytes) -> list[bytes]:
    starts = [m.start() for m in _SECTION.finditer(diff)]
    return [diff[a:b] for a, b in zip(starts, [*starts[1:], len(diff)], strict=True)]


def _rewrite(section: bytes, old_dir: str, new_dir: str) -> tuple[str, bytes] | None:
    """A modified-file section with its tree folders dropped from the header paths; None for
    binaries, additions, deletions and non-.c/.h files."""
    head, sep, body = section.partition(b"\n@@ ")
    if not sep or b"\nBinary files " in head or b"\nnew file mode" in head or b"\ndeleted file mode" in head:
        return None
    m = re.match(rb"diff --git a/" + re.escape(old_dir.encode()) + rb"/(\S+) b/", head)
    if not m:
        return None
    path = m.group(1).decode("utf-8", "replace")
    if not path.endswith((".c", ".h")):
        return None
    # only the header names the tree folders; the hunks are left byte for byte
    head = head.replace(f"a/{old_dir}/".encode(), b"a/").replace(f"b/{new_dir}/".encode(), b"b/")
    return path, head + sep + body


def real_diffs(old_version: str, new_version: str) -> list[FileDiff]:
    """Every modified .c/.h file between the two trees as its own patch (cached)."""
    d = data_dir()
    cached = d / f"diffs-{old_version}_{new_version}.patch"
    if not cached.is_file():
        extract(old_version)
        extract(new_version)
        old_dir, new_dir = f"tree-{old_version}", f"tree-{new_version}"
        # one whole-tree diff is one process instead of ~1,800; --no-renames keeps each
        # section one file's modification
        cmd = [
            "git",
            "diff",
            "--no-index",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--full-index",
            "--",
            old_dir,
            new_dir,
        ]
        try:
            cp = subprocess.run(
                cmd,
                cwd=d,
                capture_output=True,
                timeout=900,
                check=False,
                env={**os.environ, **_GIT_ENV},
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise Unavailable(f"git diff: {e}") from e
        if cp.returncode not in (0, 1):
            raise Unavailable(f"git diff --no-index: {cp.stderr.decode(errors='replace')[-200:]}")
        kept = [r for s in _split_sections(cp.stdout) if (r := _rewrite(s, old_dir, new_dir))]
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(b"".join(diff for _, diff in sorted(kept)))
        os.replace(tmp, cached)  # whole or not at all
    out = []
    for s in _split_sections(cached.read_bytes()):
        m = re.match(rb"diff --git a/(\S+) ", s)
        if m:
            out.append(FileDiff(m.group(1).decode("utf-8", "replace"), s))
    return out


def real_pair(old_version: str = DEFAULT_PAIR[0], new_version: str = DEFAULT_PAIR[1]) -> RealPair:
    """Both trees (downloaded and extracted as needed) and their per-file diffs."""
    old_deb, new_deb = download(old_version), download(new_version)
    return RealPair(
        old_version,
        new_version,
        extract(old_version),
        extract(new_version),
        old_deb,
        new_deb,
        real_diffs(old_version, new_version),
    )


def spread(items: list[FileDiff], n: int) -> list[FileDiff]:
    """``n`` items evenly spread over the (path-sorted) list: every subsystem, reproducibly."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def bug_id(index: int, path: str) -> str:
    """A readable, valid bug id naming the file (ids are lower-case [a-z0-9._-])."""
    return f"rt-{index:04d}-" + re.sub(r"[^a-z0-9._-]", "_", path.lower().replace("/", "-"))


def publish(diffs: list[FileDiff], server: PIServerLike, bugs_dir: Path) -> dict[str, FileDiff]:
    """Each diff as a one-patch mail on ``server`` plus a known-bug file naming it.

    Returns the diffs by bug id. Uses testing.mailgen.
    """
    from testing.mailgen import make_mbox, make_patch_mail

    bugs_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, FileDiff] = {}
    for i, fd in enumerate(diffs, 1):
        bid = bug_id(i, fd.path)
        msgid = f"{bid}@realtrees.test"
        subject = f"{fd.path.rsplit('/', 1)[0]}: update {fd.path.rsplit('/', 1)[-1]}"
        server.add_thread(make_mbox([make_patch_mail(subject, fd.diff, msgid)]))
        (bugs_dir / f"{bid}.toml").write_text(
            f'id = "{bid}"\ntitle = "real change to {fd.path}"\nseverity = "medium"\n'
            f'\n[[fix]]\nmsgid = "{msgid}"\n'
        )
        out[bid] = fd
    return out
