"""Helpers shared by the renderers: the bug x tree matrix, counts, short texts."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchcheck.model import Bug, BugResult, HunkResult, HunkStatus, PatchResult, Prereq, TreeInfo, Verdict

if TYPE_CHECKING:
    from patchcheck.report.model import Report

OK_VERDICTS = (Verdict.PRESENT, Verdict.NOT_APPLICABLE)
FINDING_VERDICTS = (Verdict.BACKPORTABLE, Verdict.CONFLICTING, Verdict.PARTIAL)

# C0 controls except tab/newline, DEL and C1: they would smuggle terminal escapes into a
# table or make XML ill-formed, and never carry meaning in a report.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str | None) -> str:
    """``text`` without control characters ('' for None)."""
    return _CONTROL_RE.sub("", text) if text else ""


def one_line(text: str | None, limit: int | None = None) -> str:
    """Collapse whitespace to single spaces and cut to ``limit`` characters with an ellipsis."""
    s = " ".join(clean(text).split())
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)].rstrip() + "…"
    return s


@dataclass
class Matrix:
    """Bugs (rows) and trees (columns) with the result of each cell, if the run had one."""

    bugs: list[Bug]
    trees: list[TreeInfo]
    cells: dict[tuple[str, str], BugResult]

    def get(self, bug: Bug, tree: TreeInfo) -> BugResult | None:
        return self.cells.get((bug.id, tree.name))

    def for_bug(self, bug: Bug) -> list[BugResult]:
        return [r for t in self.trees if (r := self.get(bug, t)) is not None]

    def for_tree(self, tree: TreeInfo) -> list[BugResult]:
        return [r for b in self.bugs if (r := self.get(b, tree)) is not None]


def matrix(report: Report) -> Matrix:
    """Index the results; bugs/trees that only appear in results are appended in run order."""
    bugs = list(report.bugs)
    trees = list(report.trees)
    seen_b = {b.id for b in bugs}
    seen_t = {t.name for t in trees}
    cells: dict[tuple[str, str], BugResult] = {}
    for r in report.results:
        if r.bug.id not in seen_b:
            bugs.append(r.bug)
            seen_b.add(r.bug.id)
        if r.tree.name not in seen_t:
            trees.append(r.tree)
            seen_t.add(r.tree.name)
        cells[(r.bug.id, r.tree.name)] = r
    return Matrix(bugs, trees, cells)


def plural(n: int, word: str) -> str:
    """'1 bug', '3 bugs' (the words used here all take a plain -s)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def verdict_count(n: int, verdict: str) -> str:
    """'1 present', '2 backportable', but '5 errors': only the noun among the verdicts takes -s."""
    return plural(n, verdict) if verdict == Verdict.ERROR else f"{n} {verdict}"


def verdict_counts(results: list[BugResult]) -> dict[str, int]:
    """Count per verdict, in tuple(Verdict) order, only verdicts that occur (unknown ones last)."""
    c = Counter(r.verdict for r in results)
    order = list(tuple(Verdict)) + sorted(v for v in c if v not in tuple(Verdict))
    return {v: c[v] for v in order if c[v]}


def counts_text(results: list[BugResult]) -> str:
    counts = verdict_counts(results)
    if not counts:
        return "no results"
    return ", ".join(verdict_count(n, v) for v, n in counts.items())


def label(verdict: str, method: str | None) -> str:
    """'verdict (method)', or just the verdict."""
    return f"{verdict} ({method})" if method else verdict


def tree_identity(t: TreeInfo) -> str:
    """One line naming a tree: 'name: kind, version 4.19.90, distro release'."""
    parts = [t.kind]
    if t.version:
        parts.append(f"version {t.version}")
    dist = " ".join(x for x in (t.distro, t.release) if x)
    if dist:
        parts.append(dist)
    if t.arch:
        parts.append(t.arch)
    return f"{t.name}: {', '.join(parts)}"


def problem_hunks(p: PatchResult) -> list[HunkResult]:
    """Hunks that keep a patch from applying.

    A missing file is only a problem when the patch as a whole is not 'not-applicable'
    (otherwise the absent file is the very reason the fix does not concern the tree).
    """
    return [
        h
        for h in p.hunks
        if h.status == HunkStatus.FAILED
        or (h.status == HunkStatus.MISSING and p.verdict != Verdict.NOT_APPLICABLE)
    ]


def hunk_place(h: HunkResult) -> str:
    """'file:line', plus the patch's own line when the hunk landed (or failed) elsewhere."""
    place = f"{h.file}:{h.line}" if h.line is not None else h.file
    if h.patch_line is not None and h.line is not None and h.patch_line != h.line:
        place += f" (patch: line {h.patch_line})"
    return place


def hunk_text(h: HunkResult) -> str:
    """'file:line reason' (the status stands in for a missing reason)."""
    return f"{hunk_place(h)} {one_line(h.reason) or h.status}"


def result_error(r: BugResult) -> str:
    """Why a cell is 'error': the bug's error, else its patches' errors."""
    if r.error:
        return one_line(r.error)
    errs = [one_line(p.error) for p in r.patches if p.error]
    return "; ".join(errs) or "error"


def short_detail(r: BugResult, limit: int | None = 80) -> str:
    """A few words on a cell: its error, its first failed required hunk, or its evidence.

    Optional patches are left out: they never decide the verdict, so they must not
    headline it either.
    """
    if r.verdict == Verdict.ERROR:
        return one_line(result_error(r), limit)
    if r.verdict not in OK_VERDICTS:
        failed = [h for p in r.required for h in problem_hunks(p)]
        if failed:
            more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
            return one_line(hunk_text(failed[0]), None if limit is None else limit - len(more)) + more
    # The evidence of a required patch that shares the bug's verdict explains it best.
    pick = next((p for p in r.required if p.verdict == r.verdict), None)
    if pick is None:
        pick = next(iter(r.required or r.patches), None)
    return one_line(pick.evidence, limit) if pick else ""


def prereq_text(q: Prereq) -> str:
    """'<sha12> subject: verdict (method) [hunk #1, #2]', with depth and scope when not plain."""
    hunks = ", ".join(q.hunks)
    extra = [f"hunk {hunks}"] if hunks else []
    if q.needed_by:
        extra.append(f"needed by {q.needed_by[:12]}")
    if q.partial:
        extra.append("judged on the fix's files only")
    return f"{q.commit[:12]} {one_line(q.subject)}: {label(q.verdict, q.method)} [{'; '.join(extra)}]"


def prereq_lines(p: PatchResult) -> list[str]:
    """A patch's prerequisites (nearest first), the search's notes, and its verdict on top of
    the absent ones; empty when no search was made."""
    out = [prereq_text(q) for q in p.prereqs]
    if p.prereq_note:
        out.append(f"({one_line(p.prereq_note)})")
    if p.with_prereqs:
        out.append(f"with prerequisites: {one_line(p.with_prereqs)}")
    return out
