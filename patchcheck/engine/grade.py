"""Grading one patch on the scratch state: run the tools both ways, gather the facts of
every hunk (tool placements, where its images are, which of its lines are around), and let
decide.py turn them into hunk results and a content verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from patchcheck import decide
from patchcheck.decide import Absence, Decision, HunkFacts, Near, Placement, Shares
from patchcheck.engine.blocks import (
    LineIndex,
    added_lines_nearby,
    near_match,
    post_as_pre,
    removed_lines_nearby,
    removed_only,
    significant,
)
from patchcheck.engine.fast import certain_runs
from patchcheck.engine.scratch import Scratch
from patchcheck.engine.tools import Section, run_tools
from patchcheck.model import HunkResult, HunkStatus
from patchcheck.text.diff import FilePatch, Hunk

NEAR_SEARCHES = 100  # unplaced hunks per patch that get a near-match search (difflib: slow)

# ---- facts ------------------------------------------------------------------------------


@dataclass
class _Located:
    hunk: Hunk
    path: str  # where the file is in the scratch (the new name of an already-done rename)
    before_at: int | None  # 0-based place of the exact pre-image, if any
    after_at: int | None  # 0-based place of the exact post-image, if any


def _shares(index: LineIndex, h: Hunk, near: int) -> Shares:
    adds, removes = bool(significant(h.added)), bool(removed_only(h))
    return Shares(adds, added_lines_nearby(index, h, near), removed_lines_nearby(index, h, near), removes)


def _facts(
    loc: _Located, index: LineIndex, rv: Placement | None, fw: Placement | None, near_ok: bool
) -> HunkFacts:
    """A hunk's facts. Shares and near matches cost a window scan or a difflib pass each:
    they are gathered only where decide.judge_hunk reads them (a fuzzed forward landing;
    a hunk no tool placed), near matches only while ``near_ok``."""
    h = loc.hunk
    fuzzed = fw is not None and fw.ok and fw.fuzz > 0
    placed = (rv is not None and rv.ok) or (fw is not None and fw.ok)
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
    )


def _absence(scratch: Scratch, located: Sequence[_Located]) -> list[Absence]:
    everywhere: dict[str, set[bytes]] = {}
    out = []
    for loc in located:
        if loc.path not in everywhere:
            everywhere[loc.path] = set(scratch.index(loc.path).normed())
        removed = removed_only(loc.hunk)
        out.append(Absence(loc.path, bool(removed), any(r in everywhere[loc.path] for r in removed)))
    return out


# ---- one patch ----------------------------------------------------------------------------


def _locate(scratch: Scratch, fp: FilePatch) -> str | None:
    """Where the file a section changes is in the scratch: its old path, or the new path
    of a rename that is already done. None when neither exists."""
    if fp.old_path and scratch.ensure(fp.old_path):
        return fp.old_path
    if fp.rename and fp.new_path and scratch.ensure(fp.new_path):
        return fp.new_path
    return None


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
    for fp, where in present_files:
        index = scratch.index(where)
        sec = Section(fp, where, index, exact_file=b"\r" not in scratch.data(where))
        for h in fp.hunks:
            loc = _Located(h, where, index.find(h.before, h.old_start - 1), index.find(h.after, h.new_start - 1))
            located.append(loc)
            sec.before_at[h.index], sec.after_at[h.index] = loc.before_at, loc.after_at
        if not fp.binary:
            sections.append(sec)
    before_at = {loc.hunk.index: loc.before_at for loc in located}
    new_absent = [fp for fp in new_files if fp not in new_present]
    runs = certain_runs(scratch, sections, new_present, new_absent, bool(missing)) or run_tools(
        scratch, sections, before_at, new_present, new_absent, bool(missing)
    )
    rev, fwd = runs.rev, runs.fwd

    results: list[HunkResult] = []
    modified: list[HunkResult] = []
    lacking: list[HunkResult] = []
    unplaced = 0
    for loc in located:
        i = loc.hunk.index
        rv, fw = rev.get(i), fwd.get(i)
        unplaced += not ((rv is not None and rv.ok) or (fw is not None and fw.ok))
        j = decide.judge_hunk(_facts(loc, scratch.index(loc.path), rv, fw, near_ok=unplaced <= NEAR_SEARCHES))
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
            results.append(HunkResult(where, HunkStatus.FAILED, 0, reason="binary patch: not checked"))
        elif fp.mode_only or (not fp.hunks and fp.new_path):
            results.append(HunkResult(where, HunkStatus.CLEAN, 0, reason="mode change or rename only"))
        elif fp.new_path is None and not fp.hunks:
            results.append(HunkResult(where, HunkStatus.CLEAN, 0, reason="deletes the file"))
    # a file-level result not present (a file to create, delete or rename; a missing or
    # binary file) shows nothing of the fix
    lacking += [r for r in results if r.index == 0 and r.status != HunkStatus.PRESENT]
    lacking += [r for r in results if r.status == HunkStatus.MISSING and r.index]
    _number(results, files)
    d = decide.patch_verdict(results, runs.whole_rev_ok, runs.whole_fwd_ok, modified, lacking)
    if decide.wants_absence_check(d):
        d = decide.buggy_code_absent(d, _absence(scratch, located))
    return d
