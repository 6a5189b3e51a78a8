"""Grading one patch on the scratch state: run the tools both ways, gather the facts of
every hunk (tool placements, where its images are, which of its lines are around), and let
decide.py turn them into hunk results and a content verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from patchcheck import decide
from patchcheck.decide import Decision, HunkFacts, Near, Placement, Shares
from patchcheck.engine.blocks import (
    LineIndex,
    added_lines_nearby,
    deletion_differs,
    func_name,
    in_function,
    near_match,
    post_as_pre,
    removed_lines_nearby,
    removed_only,
    significant,
)
from patchcheck.engine.fast import certain_runs
from patchcheck.engine.scratch import Scratch
from patchcheck.engine.tools import NotAPatch, Section, refusal, run_tools
from patchcheck.model import HunkResult, HunkStatus
from patchcheck.text.diff import FilePatch, Hunk

NEAR_SEARCHES = 100  # near-match searches per patch (difflib: slow), for hunks not placed in their place

# ---- facts ------------------------------------------------------------------------------


@dataclass
class _Located:
    hunk: Hunk
    path: str  # where the file is in the scratch (the new name of an already-done rename)
    before_at: int | None  # 0-based place of the exact pre-image, if any
    after_at: int | None  # 0-based place of the exact post-image, if any
    deletion_differs: int | None = None  # the section deletes its file: where it differs


def _shares(index: LineIndex, h: Hunk, near: int) -> Shares:
    adds, removes = bool(significant(h.added)), bool(removed_only(h))
    return Shares(adds, added_lines_nearby(index, h, near), removed_lines_nearby(index, h, near), removes)


def _facts(
    loc: _Located, index: LineIndex, rv: Placement | None, fw: Placement | None, near_ok: bool
) -> HunkFacts:
    """A hunk's facts. Shares and near matches cost a window scan or a difflib pass each:
    they are gathered only where decide.judge_hunk reads them (a fuzzed forward landing;
    a hunk no tool placed in its place), near matches only while ``near_ok``. Whether a
    landing is in the function the hunk's @@ header names is asked of a landing that
    needs the check (decide.needs_place_check) or when both directions place the hunk."""
    h = loc.hunk
    func = func_name(h.section)
    lines = index.lines
    both = rv is not None and rv.ok and fw is not None and fw.ok
    rev_in = fwd_in = None
    if func and rv and rv.line and (both or decide.needs_place_check(rv)):
        rev_in = in_function(lines, rv.line, func)
    if func and fw and fw.line and (both or decide.needs_place_check(fw)):
        fwd_in = in_function(lines, fw.line, func)
    rev_here = rv is not None and rv.ok and decide.in_place(func, rev_in, rv.line, h.old_start)
    fwd_here = fw is not None and fw.ok and (not fw.fuzz or decide.in_place(func, fwd_in, fw.line, h.old_start))
    fuzzed = fw is not None and fw.ok and fw.fuzz > 0
    placed = rev_here or fwd_here
    near = not placed and near_ok
    post = Near(*near_match(index.lines, post_as_pre(h), h.new_start - 1)) if near else None
    return HunkFacts(
        index=h.index,
        path=loc.path,
        old_start=h.old_start,
        new_start=h.new_start,
        before_at=loc.before_at,
        after_at=loc.after_at,
        rev=rv,
        fwd=fw,
        at_old=None if placed else _shares(index, h, h.old_start - 1),
        at_new=_shares(index, h, h.new_start - 1) if fuzzed else None,
        at_landing=_shares(index, h, ((fw.line if fw else None) or h.old_start) - 1) if fuzzed else None,
        at_post=_shares(index, h, post.line - 1) if post is not None and post.line is not None else None,
        near_pre=Near(*near_match(index.lines, h, h.old_start - 1)) if near else None,
        near_post=post,
        func=func,
        rev_in_func=rev_in,
        fwd_in_func=fwd_in,
        post_in_func=in_function(lines, post.line, func) if func and post and post.line else None,
        old_in_func=in_function(lines, h.old_start, func) if func and not placed else None,
        deletion_differs=loc.deletion_differs,
    )


# ---- one patch ----------------------------------------------------------------------------


def _locate(scratch: Scratch, fp: FilePatch) -> str | None:
    """Where the file a section changes is in the scratch: its old path, or the new path
    of a rename or copy that is already done (a copy's new file, when there, is where
    the fix would be). None when neither exists."""
    if fp.copy and fp.new_path and scratch.ensure(fp.new_path):
        return fp.new_path
    if fp.old_path and scratch.ensure(fp.old_path):
        return fp.old_path
    if fp.rename and fp.new_path and scratch.ensure(fp.new_path):
        return fp.new_path
    return None


def _binary(scratch: Scratch, fp: FilePatch, where: str) -> HunkResult:
    """A binary section's result: git apply --check of it alone, each way."""
    if b"\nGIT binary patch\n" not in fp.raw:
        return decide.binary_result(where, False, False, False, "")
    rev = scratch.check_git_apply(fp.raw, reverse=True)
    fwd = None if rev.ok else scratch.check_git_apply(fp.raw)
    why_not = refusal(fwd.err(), None) if fwd is not None and not fwd.ok else None
    if why_not:  # GNU patch reads no binary data: git alone judges it
        raise NotAPatch(f"not a valid patch: {fp.path}: {why_not}")
    why = next(
        (ln for ln in (fwd.err() if fwd else "").splitlines() if ln.startswith("error:")), "git apply refuses it"
    )
    return decide.binary_result(where, True, rev.ok, fwd is not None and fwd.ok, why.removeprefix("error: "))


def _number(results: list[HunkResult], files: Sequence[FilePatch]) -> None:
    """Put the results in patch order and number hunks as patch(1) does, per file (the
    engine keys them by their number in the whole patch); each gets the line its patch
    says it goes to."""
    start = {h.index: h.old_start for fp in files for h in fp.hunks}
    in_file = {h.index: k for fp in files for k, h in enumerate(fp.hunks, 1)}
    results.sort(key=lambda r: (r.index == 0, r.index))
    for r in results:
        r.patch_line = start.get(r.index)
        r.index = in_file.get(r.index, 0)


def grade_patch(scratch: Scratch, files: list[FilePatch]) -> Decision:
    """Hunk results and a content verdict for one patch on the scratch state."""
    present_files: list[tuple[FilePatch, str]] = []
    missing: list[FilePatch] = []
    new_files: list[FilePatch] = []
    gone: list[FilePatch] = []  # deletions that are already done
    for fp in files:
        if fp.old_path is None:
            new_files.append(fp)
            continue
        where = _locate(scratch, fp)
        if where is not None:
            present_files.append((fp, where))
        elif fp.new_path is None:
            gone.append(fp)
        else:
            missing.append(fp)

    new_present = [fp for fp in new_files if fp.new_path and scratch.ensure(fp.new_path)]
    if missing and not present_files and not new_present:
        hunks = [
            HunkResult(fp.path, HunkStatus.MISSING, h.index, reason="file not in tree")
            for fp in missing
            for h in fp.hunks
        ]
        _number(hunks, files)
        return decide.none_exist(hunks, [fp.path for fp in missing])
    if gone and not missing and not present_files and not new_files:
        hunks = [HunkResult(fp.path, HunkStatus.PRESENT, 0, reason="file already deleted") for fp in gone]
        return decide.nothing_to_delete(hunks, [fp.path for fp in gone])

    located: list[_Located] = []
    sections: list[Section] = []
    # a rename (or copy) without hunks whose new file is there: only a reverse check can
    # tell, and the forward tools would refuse it for a reason that is no conflict
    moved = [(fp, w) for fp, w in present_files if not fp.hunks and not fp.binary and w != fp.old_path]
    differs: dict[int, int | None] = {}
    for fp, where in present_files:
        index = scratch.index(where)
        sec = Section(fp, where, index, exact_file=b"\r" not in scratch.data(where))
        if fp.new_path is None:
            differs[id(fp)] = deletion_differs(index.lines, fp.hunks)
        for h in fp.hunks:
            before, after = index.find(h.before, h.old_start - 1), index.find(h.after, h.new_start - 1)
            loc = _Located(h, where, before, after, differs.get(id(fp)))
            located.append(loc)
            sec.before_at[h.index], sec.after_at[h.index] = loc.before_at, loc.after_at
        if not fp.binary and (fp, where) not in moved:
            sections.append(sec)
    before_at = {loc.hunk.index: loc.before_at for loc in located}
    new_absent = [fp for fp in new_files if fp not in new_present]
    already = [*new_present, *(fp for fp, _ in moved)]
    runs = certain_runs(scratch, sections, already, new_absent, bool(missing)) or run_tools(
        scratch, sections, before_at, already, new_absent, bool(missing)
    )
    rev, fwd = runs.rev, runs.fwd

    results: list[HunkResult] = []
    modified: list[HunkResult] = []
    lacking: list[HunkResult] = []
    searched = 0  # near-match searches so far
    for loc in located:
        i = loc.hunk.index
        rv, fw = rev.get(i), fwd.get(i)
        facts = _facts(loc, scratch.index(loc.path), rv, fw, near_ok=searched < NEAR_SEARCHES)
        searched += facts.near_pre is not None
        j = decide.judge_hunk(facts)
        results.append(j.result)
        if j.modified:
            modified.append(j.result)
        if not j.traced:
            lacking.append(j.result)
    for fp in missing:
        for h in fp.hunks:
            results.append(HunkResult(fp.path, HunkStatus.MISSING, h.index, reason="file not in tree"))
        if not fp.hunks:  # a binary or mode-only section for a file the tree lacks
            results.append(HunkResult(fp.path, HunkStatus.MISSING, 0, reason="file not in tree"))
    for fp in new_files:
        done = fp in new_present
        results.append(
            HunkResult(
                fp.new_path or "?",
                HunkStatus.PRESENT if done else HunkStatus.CLEAN,
                0,
                reason="new file already exists" if done else "creates a new file",
            )
        )
    for fp in gone:
        results.append(HunkResult(fp.path, HunkStatus.PRESENT, 0, reason="file already deleted"))
    for fp, where in present_files:
        if fp.binary:
            results.append(_binary(scratch, fp, where))
        elif (fp, where) in moved:
            how = "copied" if fp.copy else "renamed"
            results.append(HunkResult(where, HunkStatus.PRESENT, 0, reason=f"already {how} from {fp.old_path}"))
        elif fp.mode_only or (not fp.hunks and fp.new_path):
            results.append(HunkResult(where, HunkStatus.CLEAN, 0, reason="mode change or rename only"))
        elif fp.new_path is None and not fp.hunks:
            results.append(decide.empty_deletion(where, differs.get(id(fp))))
    # a file-level result not present (a file to create, delete or rename; a missing or
    # binary file) shows nothing of the fix
    lacking += [r for r in results if r.index == 0 and r.status != HunkStatus.PRESENT]
    lacking += [r for r in results if r.status == HunkStatus.MISSING and r.index]
    _number(results, files)
    # a patch of binary sections only: git apply checked each one whole
    text = bool(sections or already or new_absent)
    binary = [r for r in results if r.file in {w for fp, w in present_files if fp.binary} and r.index == 0]
    whole_rev = runs.whole_rev_ok if text else bool(binary) and all(r.status == HunkStatus.PRESENT for r in binary)
    whole_fwd = runs.whole_fwd_ok if text else bool(binary) and all(r.status == HunkStatus.CLEAN for r in binary)
    return decide.patch_verdict(results, whole_rev, whole_fwd, modified, lacking)
