"""From a verdict to a backport: each required patch, in order, checked on the state the
patches written before it leave, and when it is backportable, adapted to the tree (see
adapt.py) and applied there for the next ones. A conflicting patch gets its failed hunks,
with their near matches, as reject text; nothing of it is applied.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from patchcheck.engine.adapt import Adapted, NotExact, adapt, take
from patchcheck.engine.check import TreeContext, check_patch
from patchcheck.engine.scratch import Scratch
from patchcheck.engine.threeway import named_paths
from patchcheck.engine.tools import split_hunks
from patchcheck.evidence.prereqs import Search, absent, search, wanted
from patchcheck.model import Fix, HunkResult, HunkStatus, Method, PatchMail, PatchResult, Prereq, Series, Verdict
from patchcheck.text.diff import FilePatch, MalformedPatch, parse_diff
from patchcheck.trees.base import TreeView


@dataclass
class Step:
    """What became of one patch."""

    patch: PatchMail
    result: PatchResult  # its check on the state the patches written before it leave
    adapted: Adapted | None = None  # set when it is to be written
    rejects: bytes | None = None  # a conflicting patch's failed hunks
    why: str = ""  # why nothing is written, in words
    prereq_of: str | None = None  # a prerequisite written for that patch (its subject)

    @property
    def written(self) -> bool:
        return self.adapted is not None


def _plain(ctx: TreeContext) -> TreeContext:
    """The context without the prerequisite search (for judging the prerequisites, and for
    trying them under a fix)."""
    return dataclasses.replace(ctx, prereqs=None, with_prereqs=False)


class Backporter:
    """One scratch state for a whole run: every patch is checked on top of the ones
    written before it (of its own fix, of earlier fixes and of earlier bugs)."""

    def __init__(self, tree: TreeView, ctx: TreeContext | None = None) -> None:
        self.tree = tree
        self.ctx = ctx or TreeContext()
        self.scratch = Scratch(tree)
        self.taken: list[Adapted] = []  # what the scratch holds beyond the tree, in order

    def close(self) -> None:
        self.scratch.close()

    def __enter__(self) -> Backporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def steps(self, patch: PatchMail, fix: Fix, cves: Sequence[str] = ()) -> list[Step]:
        """One patch; with --with-prereqs, the absent prerequisites of a conflict first,
        when that makes it apply."""
        s = self.step(patch, fix, cves)
        if s.result.verdict != Verdict.CONFLICTING:
            return [s]
        found = prerequisites(self.tree, self.ctx, patch, s.result)
        if found is None:
            return [s]
        note(s.result, found)
        if not self.ctx.with_prereqs:
            return [s]
        trial = Backporter(self.tree, _plain(self.ctx))
        try:
            for a in self.taken:
                take(trial.scratch, a)
                trial.taken.append(a)
            before, skipped = trial.apply_prereqs(absent(found.prereqs), patch.subject)
            last = trial.step(patch, fix, cves)
        except BaseException:
            trial.close()
            raise
        s.result.with_prereqs = on_top_words(last.result, before, skipped)
        if not last.written:
            trial.close()
            return [s]
        last.result.prereqs, last.result.prereq_note = s.result.prereqs, s.result.prereq_note
        last.result.with_prereqs = s.result.with_prereqs
        self.scratch.close()
        self.scratch, self.taken = trial.scratch, trial.taken
        return [*before, last]

    def apply_prereqs(self, prereqs: Sequence[Prereq], subject: str) -> tuple[list[Step], list[str]]:
        """Each prerequisite that applies, oldest first, taken in turn; and those that did not."""
        repo = self.ctx.upstream
        done: list[Step] = []
        skipped: list[str] = []
        for pq in prereqs if repo is not None else ():
            assert repo is not None
            mail = repo.patch_mail(pq.commit)
            st = self.step(mail, Fix(msgid=None, upstream=(pq.commit,)))
            if st.written:
                st.prereq_of = subject
                done.append(st)
            else:
                skipped.append(f"{pq.commit[:12]} ({st.result.verdict})")
        return done, skipped

    def step(self, patch: PatchMail, fix: Fix, cves: Sequence[str] = ()) -> Step:
        """Check one patch; adapt and take it when it is backportable."""
        r = check_patch(self.scratch, patch, fix=fix, ctx=self.ctx, keep_going=False, cves=cves)
        s = Step(patch, r)
        if r.verdict == Verdict.BACKPORTABLE:
            try:
                files = parse_diff(patch.diff)
                s.adapted = adapt(
                    self.scratch,
                    files,
                    patch.diff,
                    three_way=r.method == Method.THREEWAY,
                    object_dirs=self.ctx.object_dirs,
                )
                take(self.scratch, s.adapted)
                self.taken.append(s.adapted)
            except (NotExact, MalformedPatch) as e:
                s.adapted = None
                s.why = f"refused: the adapted patch is not exact ({e})"
        elif r.verdict == Verdict.CONFLICTING:
            s.why = r.evidence
            s.rejects = rejects(patch, r)
        elif r.verdict == Verdict.PRESENT:
            s.why = f"already in the tree: {r.evidence}"
        else:
            s.why = r.error or r.evidence
        return s


# ---- prerequisites ------------------------------------------------------------------------


def judge_on(tree: TreeView, ctx: TreeContext) -> Callable[[PatchMail], PatchResult]:
    """The engine's verdict on a patch against the tree as it is (no other patch applied)."""
    plain = _plain(ctx)

    def judge(p: PatchMail) -> PatchResult:
        with contextlib.suppress(MalformedPatch):
            tree.prepare(named_paths(parse_diff(p.diff)))
        with Scratch(tree) as sc:
            return check_patch(sc, p, ctx=plain, keep_going=False)

    return judge


def prerequisites(tree: TreeView, ctx: TreeContext, patch: PatchMail, result: PatchResult) -> Search | None:
    """The search for a conflict's prerequisites, when an upstream clone was given."""
    if ctx.upstream is None or ctx.prereqs is None or result.verdict not in (Verdict.CONFLICTING, Verdict.PARTIAL):
        return None
    failed = wanted(patch, result)
    if not failed:
        return None
    if not patch.upstream:
        return Search(notes=["no upstream commit id known (bug file or trailer): prerequisites not searched"])
    sha = ctx.upstream.commit(patch.upstream)
    if sha is None:
        where = ctx.upstream.path
        return Search(
            notes=[f"upstream commit {patch.upstream[:12]} is not in {where}: prerequisites not searched"]
        )
    return search(ctx.upstream, sha, failed, judge_on(tree, ctx), ctx.prereqs)


def note(r: PatchResult, found: Search) -> None:
    r.prereqs = list(found.prereqs)
    if not found.prereqs and not found.notes:
        found.notes.append("no upstream commit changed the failed hunks' lines before the fix")
    r.prereq_note = "; ".join(found.notes) or None


def on_top_words(r: PatchResult, applied: Sequence[Step], skipped: Sequence[str]) -> str:
    label = f"{r.verdict} ({r.method})" if r.method else str(r.verdict)
    done = ", ".join(s.patch.upstream[:12] for s in applied if s.patch.upstream) or "none"
    out = f"{label} on top of the absent prerequisites that apply (oldest first: {done})"
    return out + (f"; not applied: {', '.join(skipped)}" if skipped else "")


def annotate(tree: TreeView, ctx: TreeContext, series: Series, fix: Fix, results: Sequence[PatchResult]) -> None:
    """For check/audit: each conflicting patch's prerequisites, and with --with-prereqs
    its verdict on top of the absent ones (after the series' patches before it)."""
    for i, (p, r) in enumerate(zip(series.patches, results, strict=True)):
        found = prerequisites(tree, ctx, p, r)
        if found is None:
            continue
        note(r, found)
        if not ctx.with_prereqs:
            continue
        with Backporter(tree, _plain(ctx)) as trial:
            applied, skipped = trial.apply_prereqs(absent(found.prereqs), p.subject)
            for earlier in series.patches[:i]:
                trial.step(earlier, fix)
            r.with_prereqs = on_top_words(trial.step(p, fix).result, applied, skipped)


# ---- reject text ------------------------------------------------------------------------


def hunk_texts(fp: FilePatch) -> dict[int, bytes]:
    """Each hunk's lines as the diff has them (header line included), by its number in the
    file (as results name it)."""
    return {h.file_index: t for h, t in zip(fp.hunks, split_hunks(fp.raw)[1], strict=False)}


def _comment(text: str) -> list[str]:
    return [f"# {ln}".rstrip() for ln in text.rstrip("\n").split("\n")]


def rejects(patch: PatchMail, result: PatchResult) -> bytes:
    """The hunks that cannot be placed, as a reject file: what the engine found about each
    (reason, near match) in comment lines first, then the hunks as the patch has them."""
    failed: list[HunkResult] = [h for h in result.hunks if h.status in (HunkStatus.FAILED, HunkStatus.MISSING)]
    head = [f"patchcheck: {patch.subject} <{patch.msgid}>", result.evidence, ""]
    for h in failed:
        where = f"{h.file}:{h.line}" if h.line else h.file
        head.append(f"hunk #{h.index} at {where}: {h.reason or h.status}")
        if h.near:
            head += ["  near match:", *(f"  {ln}" for ln in h.near.split("\n"))]
    out = ["\n".join(ln for t in head for ln in _comment(t)).encode() + b"\n"]
    try:
        files = parse_diff(patch.diff)
    except MalformedPatch:
        return b"".join(out)
    want = {(h.file, h.index) for h in failed}
    for fp in files:
        names = {p for p in (fp.old_path, fp.new_path) if p}
        texts = [t for i, t in hunk_texts(fp).items() if any((n, i) in want for n in names)]
        if texts:
            old = f"a/{fp.old_path}" if fp.old_path else "/dev/null"
            new = f"b/{fp.new_path}" if fp.new_path else "/dev/null"
            out.append(f"--- {old}\n+++ {new}\n".encode())
            out += [t if t.endswith(b"\n") else t + b"\n" for t in texts]
    return b"".join(out)
