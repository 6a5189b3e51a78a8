"""A local clone of mainline or stable (``--upstream-repo``): where a fix given by its
upstream commit alone is taken from (``git format-patch -1``), and what corroborates a lore
mail that names its upstream commit. Read only, through git, never over the network.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from patchcheck.errors import BadInput, SeriesError
from patchcheck.fetch.mail import Msg, author, cut_signature, message_facts
from patchcheck.model import Fix, PatchMail, Series
from patchcheck.sys import git, proc


class UpstreamRepo:
    """A git repository read with plain git commands (rev-parse, format-patch, blame, log)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._memo: dict[tuple[tuple[str, ...], bytes | None], proc.Result] = {}
        self._lock = threading.Lock()
        if not self.path.is_dir():
            raise BadInput(
                f"{path}: --upstream-repo: no such folder (expected a local clone of mainline or stable)"
            )
        r = self.git(["rev-parse", "--git-dir"])
        if not r.ok:
            raise BadInput(f"{path}: --upstream-repo: not a git repository (expected a local clone)")

    def git(self, args: Sequence[str], input: bytes | None = None) -> proc.Result:
        """A read-only git command in the clone; the same command is run once per run."""
        key = (tuple(args), input)
        with self._lock:
            hit = self._memo.get(key)
        if hit is None:
            hit = git.git(args, cwd=self.path, input=input)
            with self._lock:
                self._memo[key] = hit
        return hit

    def commit(self, rev: str) -> str | None:
        """The full id of ``rev`` as a commit of the clone, or None."""
        r = self.git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"])
        return r.out().strip() if r.ok and r.out().strip() else None

    def parent(self, sha: str) -> str | None:
        return self.commit(f"{sha}^")

    def patch_mail(self, sha: str, counter: int = 1, expected: int = 1, paths: Sequence[str] = ()) -> PatchMail:
        """The commit as ``git format-patch -1`` writes it (only its changes to ``paths``,
        when given), read back as a patch mail."""
        args = ["format-patch", "-1", "--stdout", "-k", "--full-index", "--no-stat", "--no-signature", sha]
        r = self.git([*args, *(["--", *paths] if paths else [])])
        if not r.ok:
            raise SeriesError(f"{self.path}: git format-patch {sha[:12]} failed: {r.err().strip()[:200]}")
        import email.parser  # here: a run without an upstream clone never needs them (~10 ms)
        import email.policy
        import email.utils

        parser = email.parser.BytesParser(policy=email.policy.default)
        msg = parser.parsebytes(r.stdout)
        subject = " ".join(str(msg.get("Subject") or "").split())
        facts, diff = message_facts(Msg(f"upstream:{sha}", r.stdout, msg), subject)
        if diff is None:
            raise SeriesError(f"{self.path}: upstream commit {sha[:12]} ({subject}) changes no file")
        name, addr = email.utils.parseaddr(str(msg.get("From") or ""))
        return PatchMail(
            msgid=f"upstream:{sha}",
            subject=subject,
            author=author(name, addr, facts),
            counter=counter,
            expected=expected,
            diff=cut_signature(diff),
            upstream=sha,
            fixes=facts.fixes,
            links=facts.links,
            cves=facts.cves,
            date=str(msg.get("Date") or ""),
            body=facts.message,
        )

    def patch_id(self, diff: bytes) -> str | None:
        r = self.git(["patch-id", "--stable"], input=diff)
        fields = r.out().split()
        return fields[0] if r.ok and fields else None

    def commit_diff(self, sha: str) -> bytes:
        r = self.git(["diff-tree", "-p", "--full-index", "--root", "--no-commit-id", sha])
        return r.stdout if r.ok else b""


def open_clone(path: Path) -> UpstreamRepo:
    """The run's one UpstreamRepo for the clone at ``path``: the fetcher and every tree's
    context share it, so each git question is asked once per run."""
    return _open_clone(Path(os.path.abspath(path)))


@functools.cache
def _open_clone(path: Path) -> UpstreamRepo:
    return UpstreamRepo(path)


def series_from_clone(repo: UpstreamRepo | None, fix: Fix) -> Series:
    """A fix given by ``upstream`` alone: each commit, in order, as a patch."""
    if repo is None:
        raise SeriesError(
            f"{fix.label}: the fix names only upstream commits; give --upstream-repo PATH (a local "
            "clone of mainline or stable) to take the patch from there"
        )
    shas = []
    for rev in fix.upstream:
        sha = repo.commit(rev)
        if sha is None:
            raise SeriesError(f"{fix.label}: upstream commit {rev} is not in {repo.path}")
        shas.append(sha)
    n = len(shas)
    patches = tuple(
        _noted(repo.patch_mail(s, i, n), f"patch taken from upstream commit {s[:12]} in {repo.path}")
        for i, s in enumerate(shas, 1)
    )
    return Series(
        key="upstream:" + ",".join(shas),
        msgid=None,
        revision=1,
        subject=patches[0].subject,
        patches=patches,
        source="upstream",
        extra={"where": str(repo.path)},
    )


def corroborate(repo: UpstreamRepo, series: Series) -> Series:
    """A lore series stays the source; each patch that names its upstream commit says what
    the clone has for it (the same change by patch-id, another one, or nothing)."""
    out = []
    for p in series.patches:
        if not p.upstream:
            out.append(p)
            continue
        sha = repo.commit(p.upstream)
        if sha is None:
            word = f"upstream commit {p.upstream[:12]} is not in {repo.path}"
        elif repo.patch_id(p.diff) == repo.patch_id(repo.commit_diff(sha)):
            word = f"upstream commit {sha[:12]} in {repo.path} has the same change"
        else:
            word = f"upstream commit {sha[:12]} in {repo.path} differs from the mail (another revision?)"
        out.append(_noted(p, f"patch taken from the mail <{p.msgid}>; {word}"))
    return dataclasses.replace(series, patches=tuple(out))


def _noted(p: PatchMail, origin: str) -> PatchMail:
    return dataclasses.replace(p, origin=origin)
