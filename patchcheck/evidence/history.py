"""Presence evidence from a tree's git history.

``History`` indexes one tree's history with a single streamed ``git log`` pass (shas,
normalised subjects, backport trailers, reverts), memoised per process and cached on disk
per HEAD (history_cache.py), so checking many bugs against one tree costs one pass.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Generic, TypeVar

from patchcheck.errors import ToolError
from patchcheck.evidence import history_cache as cache
from patchcheck.evidence.history_cache import Tables
from patchcheck.model import Evidence, Method
from patchcheck.sys.git import git
from patchcheck.sys.git import stream as git_stream
from patchcheck.text.trailers import (
    TRAILER_FORMS,
    cve_lines,
    is_sha,
    reverted_commit,
    reverted_subject,
    strip_subject_prefix,
    upstream_refs,
)

LOG_TIMEOUT = 600.0
PATCH_ID_LIMIT = 3000  # newest commits per path set whose patch-ids are compared
MIN_SUBJECT_WORDS = 3

# ---- subjects ---------------------------------------------------------------------------


def normalise_subject(subject: str) -> str:
    """Comparable form of a subject: no mail prefix (``[PATCH v2 3/5]``), no backport tag
    (``UPSTREAM:``, ``UBUNTU: SAUCE:``), one space, no final period, casefolded."""
    return strip_subject_prefix(subject).rstrip(". ").casefold()


def specific(norm: str) -> bool:
    # "fix typo" or "update defconfig" name many commits; only longer subjects identify one.
    return len(norm.split()) >= MIN_SUBJECT_WORDS


# ---- backport trailers ------------------------------------------------------------------

V = TypeVar("V")


class _PrefixMap(Generic[V]):
    """A sha-keyed dict that also answers for abbreviations, in either direction.

    A query may be shorter than the stored key (bug file gives 12 hex, trailer 40) or
    longer (trailer gives 12 hex, bug file 40).
    """

    def __init__(self, items: dict[str, V]) -> None:
        self.items = items
        self._keys = sorted(items)
        self._min = min((len(k) for k in items), default=40)

    def get(self, sha: str) -> tuple[str, V] | None:
        hit = self.items.get(sha)
        if hit is not None:
            return sha, hit
        i = bisect_left(self._keys, sha)
        if i < len(self._keys) and self._keys[i].startswith(sha):
            key = self._keys[i]
            return key, self.items[key]
        for n in range(len(sha) - 1, self._min - 1, -1):
            hit = self.items.get(sha[:n])
            if hit is not None:
                return sha[:n], hit
        return None


# ---- the log pass -------------------------------------------------------------------------


class _Builder:
    """Accumulates the index while the log streams by, newest commit first."""

    def __init__(self) -> None:
        self.commits: list[str] = []
        self.subjects: dict[str, str] = {}
        self.backports: dict[str, tuple[str, str]] = {}
        self.reverted: dict[str, str] = {}
        self.cves: dict[str, str] = {}
        # 'Revert "<subject>"' commits that name no sha: the next (older) commit with that
        # subject is the one they undid
        self._pending: dict[str, str] = {}

    def add(self, record: bytes) -> None:
        parts = record.split(b"\x1f", 2)
        if len(parts) != 3:
            return
        raw_sha, raw_subject, body = parts
        if len(raw_sha) != 40:  # %H: always 40 hex
            return
        sha = raw_sha.decode("ascii")
        self.commits.append(sha)
        subject = raw_subject.decode("utf-8", "replace")
        norm = normalise_subject(subject)
        # Newest first, so the first commit seen with a subject is the one that counts.
        self.subjects.setdefault(norm, sha)
        undoer = self._pending.pop(norm, None)
        if undoer is not None:
            self.reverted.setdefault(sha, undoer)
        reverts = reverted_commit(body) if b"reverts" in body else None
        if reverts is not None or subject.startswith("Revert "):
            # A revert quotes its target's message ("which is commit X upstream."): its
            # trailers name what it undid, not what it brought in.
            if sha in self.reverted:
                return  # a revert that a newer commit reverted again undoes nothing
            if reverts is not None:
                self.reverted.setdefault(reverts, sha)
            else:
                target = reverted_subject(subject)
                if target is not None:
                    self._pending.setdefault(normalise_subject(target), sha)
            return
        for ref in upstream_refs(body):
            self.backports.setdefault(ref.sha, (sha, ref.form))
        if b"CVE-" in body or b"cve-" in body:  # Ubuntu's CVE line, openEuler's "CVE:" key
            for cve in cve_lines(body.decode("utf-8", "replace")):
                self.cves.setdefault(cve, sha)


def _parse_stream(stream: IO[bytes], builder: _Builder, chunk: int = 1 << 20) -> None:
    """Feed NUL-separated log records to ``builder`` without holding the whole output."""
    rest = b""
    while True:
        data = stream.read(chunk)
        if not data:
            break
        records = (rest + data).split(b"\0")
        rest = records.pop()
        for rec in records:
            if rec:
                builder.add(rec)
    if rest.strip():
        builder.add(rest)


def _read_log(git_dir: Path, head: str, timeout: float = LOG_TIMEOUT) -> _Builder:
    """One ``git log`` over HEAD's history, parsed as it streams."""
    fmt = "--format=%H%x1f%s%x1f%b"
    args = ["log", "-z", "--no-color", "--no-show-signature", "--encoding=UTF-8", fmt, head, "--"]
    builder = _Builder()
    # streamed: a million-commit log is too large to buffer
    with git_stream(args, git_dir=git_dir, timeout=timeout) as s:
        _parse_stream(s.stdout, builder)
        rc = s.wait()
        if s.timed_out:
            raise ToolError(f"git log {head[:12]}: timed out after {timeout:.0f}s")
        if rc != 0:
            raise ToolError(f"git log {head[:12]} failed: {s.err_tail()}")
    return builder


def _resolve_head(git_dir: Path, head: str) -> str:
    head = head.strip()
    if is_sha(head, full=True):
        return head
    res = git(["rev-parse", "--verify", "--quiet", f"{head}^{{commit}}"], git_dir=git_dir)
    sha = res.out().strip()
    if not res.ok or not is_sha(sha, full=True):
        raise ToolError(f"{git_dir}: cannot resolve {head!r} to a commit")
    return sha


# ---- History ------------------------------------------------------------------------------

_MEMO: dict[tuple[str, str], History] = {}
_MEMO_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def clear_memo() -> None:
    """Forget in-process histories (tests; long-lived processes after a tree changed)."""
    with _MEMO_LOCK:
        _MEMO.clear()
        _KEY_LOCKS.clear()


class History:
    """What one HEAD's history says about commits, subjects and backports."""

    def __init__(self, git_dir: Path, head: str, tables: Tables) -> None:
        self.git_dir = git_dir
        self.head = head
        self.tables = tables
        self._commits = tables.commits
        self._subjects = tables.subjects
        self._backports = _PrefixMap(tables.backports)
        self._reverted = _PrefixMap(tables.reverted)
        self._cves = tables.cves
        self._pid_lock = threading.Lock()
        self._pid_locks: dict[tuple[str, ...], threading.Lock] = {}
        self._pid_cache: dict[tuple[str, ...], dict[str, str]] = {}

    def __len__(self) -> int:
        return len(self._commits)

    @classmethod
    def load(cls, git_dir: Path, head: str, cache_dir: Path | None) -> History:
        """The history of ``head``: from this process, else the disk cache, else git log."""
        git_dir = Path(os.path.realpath(git_dir))
        head = _resolve_head(git_dir, head)
        key = (str(git_dir), head)
        with _MEMO_LOCK:
            hist = _MEMO.get(key)
            if hist is not None:
                return hist
            lock = _KEY_LOCKS.setdefault(key, threading.Lock())
        with lock:  # one pass per key; other trees are not held up
            hist = _MEMO.get(key)
            if hist is not None:
                return hist
            path = cache.cache_path(cache_dir, git_dir, head) if cache_dir is not None else None
            tables = cache.read(path, head) if path is not None else None
            if tables is None:
                b = _read_log(git_dir, head)
                tables = Tables(sorted(b.commits), b.subjects, b.backports, b.reverted, b.cves)
                if path is not None:
                    cache.write(path, head, tables)
            hist = cls(git_dir, head, tables)
            with _MEMO_LOCK:
                _MEMO[key] = hist
            return hist

    # -- lookups --

    def reachable(self, sha: str) -> str | None:
        """The full sha of the commit reachable from HEAD that ``sha`` abbreviates."""
        sha = sha.strip().lower()
        if not is_sha(sha):
            return None
        i = bisect_left(self._commits, sha)
        if i < len(self._commits) and self._commits[i].startswith(sha):
            return self._commits[i]
        return None

    def backport_of(self, sha: str) -> tuple[str, str] | None:
        """(local commit, trailer form) of a backport whose trailer names ``sha``."""
        sha = sha.strip().lower()
        if not is_sha(sha):
            return None
        hit = self._backports.get(sha)
        return hit[1] if hit else None

    def reverted_by(self, sha: str) -> str | None:
        """The local commit that reverted ``sha`` (and was not itself reverted)."""
        hit = self._reverted.get(sha.strip().lower())
        return hit[1] if hit else None

    def has_commit(self, sha: str) -> bool:
        """``sha`` is reachable from HEAD, or a backport trailer names it.

        Reverts are deliberately ignored: this answers "is the introducing commit here",
        and a wrong "no" would hide a real bug as not-applicable.
        """
        return self.reachable(sha) is not None or self.backport_of(sha) is not None

    def find_fix(
        self,
        *,
        upstream: Sequence[str],
        subject: str,
        diff: bytes,
        paths: Sequence[str],
        cves: Sequence[str] = (),
    ) -> Evidence | None:
        """The strongest history evidence that the fix is in the tree, or None.

        Order: upstream sha reachable > backport trailer naming it (stable's, Ubuntu's
        ``cherry picked`` / ``backported from``, openEuler's inclusion block) > patch-id >
        subject (Ubuntu's ``UBUNTU: SAUCE:`` taken off) > a CVE line naming one of ``cves``.
        Evidence pointing at a commit that was later reverted does not count.
        """
        ups = [u.strip().lower() for u in upstream if is_sha(u.strip().lower())]
        for u in ups:
            local = self.reachable(u)
            if local and not self.reverted_by(local):
                return Evidence(Method.HISTORY, f"upstream commit {u[:12]} is an ancestor of HEAD", local)
        for u in ups:
            bp = self.backport_of(u)
            if bp and not self.reverted_by(bp[0]) and not self.reverted_by(u):
                local, form = bp
                return Evidence(
                    Method.HISTORY,
                    f"backport {local[:12]} names upstream {u[:12]} ({TRAILER_FORMS[form]})",
                    local,
                )
        if diff.strip() and paths:
            local = self._patch_id_match(diff, paths)
            if local and not self.reverted_by(local):
                return Evidence(Method.HISTORY, f"patch-id matches commit {local[:12]}", local)
        norm = normalise_subject(subject)
        if specific(norm):
            local = self._subjects.get(norm)
            if local and not self.reverted_by(local):
                return Evidence(Method.HISTORY, f"subject matches commit {local[:12]}", local)
        for cve in dict.fromkeys(c.strip().upper() for c in cves):
            local = self._cves.get(cve)
            if local and not self.reverted_by(local):
                return Evidence(Method.HISTORY, f"commit {local[:12]} names {cve} on a line of its own", local)
        return None

    # -- patch-id --

    def _patch_id_match(self, diff: bytes, paths: Sequence[str]) -> str | None:
        res = git(["patch-id", "--stable"], git_dir=self.git_dir, input=diff)
        fields = res.out().split()
        if not res.ok or not fields:
            return None
        return self._path_patch_ids(paths).get(fields[0])

    def _path_patch_ids(self, paths: Sequence[str]) -> dict[str, str]:
        """patch-id -> newest commit, over the last PATCH_ID_LIMIT commits touching paths."""
        key = tuple(sorted(set(paths)))
        with self._pid_lock:
            hit = self._pid_cache.get(key)
            if hit is not None:
                return hit
            lock = self._pid_locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._pid_cache.get(key)
            if hit is not None:
                return hit
            ids = self._compute_patch_ids(key)
            with self._pid_lock:
                self._pid_cache[key] = ids
            return ids

    def _compute_patch_ids(self, paths: Sequence[str]) -> dict[str, str]:
        # Pin the diff options a repository's own config could change, so hunks come out
        # as format-patch made them upstream; the diff is limited to ``paths``, which is
        # what the fix touches.
        log = git(
            [
                "log",
                "-p",
                "--no-merges",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--no-show-signature",
                "-U3",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                f"-n{PATCH_ID_LIMIT}",
                "--format=commit %H",
                self.head,
                "--",
                *paths,
            ],
            git_dir=self.git_dir,
            timeout=LOG_TIMEOUT,
            env={"GIT_LITERAL_PATHSPECS": "1"},
        )
        if not log.ok or not log.stdout.strip():
            return {}
        res = git(["patch-id", "--stable"], git_dir=self.git_dir, input=log.stdout, timeout=LOG_TIMEOUT)
        if not res.ok:
            return {}
        out: dict[str, str] = {}
        for line in res.stdout.splitlines():
            f = line.split()
            if len(f) == 2:
                out.setdefault(f[0].decode("ascii"), f[1].decode("ascii"))
        return out
