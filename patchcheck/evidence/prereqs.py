"""Prerequisites of a conflict, from an upstream clone: the commits that last changed the
lines a failed hunk needs (its context and the lines it removes), as the fix's parent has
them (``git blame -L``, limited to the hunk's lines), or that created a file the tree lacks.

Each one is judged against the tree by the caller's engine (``judge``: is it present, would
it apply?); one that would itself conflict has its own prerequisites searched, down to a
depth. The search is capped (depth, commits) and says when a cap was hit. Ranked nearest
first: the commits closest before the fix come first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from patchcheck.engine.blocks import find_block
from patchcheck.fetch.upstream import UpstreamRepo
from patchcheck.model import HunkStatus, PatchMail, PatchResult, Prereq, SearchLimits, Verdict
from patchcheck.text.diff import Hunk, MalformedPatch, parse_diff

MAX_FILES = 50  # a larger commit is judged on the fix's files only (an initial import is huge)
_BLAME_HEAD = re.compile(r"^([0-9a-f]{40}) \d+ \d+(?: \d+)?$")


_DEFAULT_LIMITS = SearchLimits()


@dataclass(frozen=True)
class Wanted:
    """A failed hunk of a commit, whose lines are to be explained."""

    index: int  # the hunk's number within its file, as patch(1) and the reports count
    path: str
    hunk: Hunk | None  # None: the file itself is missing from the tree


@dataclass
class Search:
    prereqs: list[Prereq] = field(default_factory=list)  # nearest first, by depth
    notes: list[str] = field(default_factory=list)  # caps hit, commits not found


@dataclass(frozen=True)
class _Blamed:
    time: int
    subject: str


def wanted(patch: PatchMail, result: PatchResult) -> list[Wanted]:
    """The hunks of a checked patch that could not be placed (failed, or in a missing file)."""
    try:
        files = parse_diff(patch.diff)
    except MalformedPatch:
        return []
    # results name a hunk by its file and its number in that file
    by_place = {
        (p, h.file_index): (fp, h) for fp in files for h in fp.hunks for p in (fp.old_path, fp.new_path) if p
    }
    out = []
    for r in result.hunks:
        got = by_place.get((r.file, r.index))
        if r.status not in (HunkStatus.FAILED, HunkStatus.MISSING) or got is None:
            continue
        fp, h = got
        out.append(Wanted(r.index, fp.old_path or r.file, None if r.status == HunkStatus.MISSING else h))
    return out


def _range(data: bytes, h: Hunk) -> tuple[int, int]:
    """1-based first and last line of the hunk's pre-image in the file as ``data`` has it
    (where the patch says, when its lines are not found there exactly)."""
    lines = data.splitlines()
    at = find_block(lines, h.before, h.old_start - 1) if h.before else None
    start = at + 1 if at is not None else max(1, h.old_start)
    last = min(len(lines), start + max(len(h.before), 1) - 1)
    return min(start, max(len(lines), 1)), max(last, 1)


def blame(repo: UpstreamRepo, parent: str, want: Wanted) -> dict[str, _Blamed]:
    """The commits that last changed the hunk's lines at ``parent`` (or created its file)."""
    if want.hunk is None:
        r = repo.git(["log", "-1", "--format=%H %ct %s", "--diff-filter=A", parent, "--", want.path])
        fields = r.out().strip().split(" ", 2) if r.ok else []
        return (
            {fields[0]: _Blamed(int(fields[1]), fields[2] if len(fields) > 2 else "")} if len(fields) >= 2 else {}
        )
    shown = repo.git(["cat-file", "blob", f"{parent}:{want.path}"])
    if not shown.ok:
        return {}
    lo, hi = _range(shown.stdout, want.hunk)
    r = repo.git(["blame", "--porcelain", "-L", f"{lo},{hi}", parent, "--", want.path])
    if not r.ok:
        return {}
    out: dict[str, _Blamed] = {}
    cur: str | None = None
    meta: dict[str, dict[str, str]] = {}
    for ln in r.out().splitlines():
        m = _BLAME_HEAD.match(ln)
        if m:
            cur = m.group(1)
            meta.setdefault(cur, {})
        elif cur is not None and not ln.startswith("\t"):
            key, _, value = ln.partition(" ")
            meta[cur].setdefault(key, value)
    for sha, info in meta.items():
        out[sha] = _Blamed(int(info.get("committer-time", "0") or 0), info.get("summary", ""))
    return out


def candidate_mail(repo: UpstreamRepo, sha: str, paths: Sequence[str]) -> tuple[PatchMail, bool]:
    """The commit as a patch; a large one only on ``paths`` (then True: judged in part)."""
    r = repo.git(["diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha])
    if len(r.out().splitlines()) <= MAX_FILES:
        return repo.patch_mail(sha), False
    return repo.patch_mail(sha, paths=paths), True


def search(
    repo: UpstreamRepo,
    fix: str,
    failed: Sequence[Wanted],
    judge: Callable[[PatchMail], PatchResult],
    limits: SearchLimits = _DEFAULT_LIMITS,
) -> Search:
    """The fix's prerequisites, each judged; theirs too for those that conflict."""
    res = Search()
    found: dict[str, Prereq] = {}
    frontier: list[tuple[str, Sequence[Wanted], int]] = [(fix, failed, 1)]
    deeper_skipped = False
    while frontier:
        sha, wants, depth = frontier.pop(0)
        parent = repo.parent(sha)
        if parent is None:
            continue  # a root commit: nothing came before it
        cands: dict[str, tuple[_Blamed, set[str]]] = {}
        for w in wants:
            for c, info in blame(repo, parent, w).items():
                cands.setdefault(c, (info, set()))[1].add(f"{w.path}#{w.index}")
        paths = sorted({w.path for w in wants})
        order = nearest_first(repo, {c: info.time for c, (info, _) in cands.items()})
        for c in order:
            info, hunks = cands[c]
            if c in found or c == fix:
                continue
            if len(found) >= limits.commits:
                res.notes.append(f"search capped at {limits.commits} commits (--prereq-commits)")
                frontier.clear()
                break
            mail, partial = candidate_mail(repo, c, paths)
            r = judge(mail)
            found[c] = Prereq(
                commit=c,
                subject=mail.subject or info.subject,
                verdict=r.verdict,
                method=r.method,
                hunks=tuple(sorted(hunks)),
                depth=depth,
                needed_by=None if sha == fix else sha,
                partial=partial,
                time=info.time,
            )
            if r.verdict == Verdict.CONFLICTING:
                if depth < limits.depth:
                    frontier.append((c, wanted(mail, r), depth + 1))
                else:
                    deeper_skipped = True
    if deeper_skipped:
        res.notes.append(
            f"search capped at depth {limits.depth} (--prereq-depth): the prerequisites of a "
            "conflicting prerequisite were not searched"
        )
    res.prereqs = []
    for depth in sorted({p.depth for p in found.values()}):
        level = {p.commit: p for p in found.values() if p.depth == depth}
        res.prereqs += [level[c] for c in nearest_first(repo, {c: p.time for c, p in level.items()})]
    return res


def nearest_first(repo: UpstreamRepo, times: dict[str, int]) -> list[str]:
    """Commits newest first: by committer time, and where times tie, a descendant before
    its ancestor."""

    def cmp(a: str, b: str) -> int:
        if times[a] != times[b]:
            return times[b] - times[a]
        if repo.git(["merge-base", "--is-ancestor", a, b]).ok:
            return 1  # a came first: b is nearer
        if repo.git(["merge-base", "--is-ancestor", b, a]).ok:
            return -1
        return 0

    return sorted(times, key=functools.cmp_to_key(cmp))


def absent(prereqs: Sequence[Prereq]) -> list[Prereq]:
    """The prerequisites the tree lacks, oldest first (the order they went upstream in),
    large ones judged in part left out."""
    gone = (Verdict.PRESENT, Verdict.NOT_APPLICABLE)
    ranked = [p for p in prereqs if p.verdict not in gone and not p.partial]
    # where times tie: a deeper one before what needs it; ``prereqs`` is nearest first
    return sorted(ranked, key=lambda p: (p.time, -p.depth, -ranked.index(p)))
