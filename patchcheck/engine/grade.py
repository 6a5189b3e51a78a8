"""Grading one patch on the scratch state: run the tools both ways, gather the facts of
every hunk (tool placements, where its images are, which of its lines are around), and let
decide.py turn them into hunk results and a content verdict."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from patchcheck import decide
from patchcheck.decide import Absence, Decision, HunkFacts, Near, Placement, Shares
from patchcheck.engine.blocks import (
    added_lines_nearby,
    find_block,
    near_match,
    norm,
    post_as_pre,
    removed_lines_nearby,
    removed_only,
    significant,
)
from patchcheck.engine.scratch import Scratch
from patchcheck.model import HunkResult, HunkStatus
from patchcheck.text.diff import FilePatch, Hunk

MAX_FUZZ = 2

# ---- tool output ------------------------------------------------------------------------

_PATCH_FILE = re.compile(r"^(?:checking|patching) file (.+?)(?: \(renamed from .*\))?$")
_PATCH_HUNK = re.compile(
    r"^Hunk #(\d+) (succeeded|FAILED|ignored) at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?"
)
_GIT_HUNK = re.compile(r"^Hunk #(\d+) succeeded at (\d+)(?: \(offset (-?\d+) lines?\))?")
_GIT_CHECK = re.compile(r"^Checking patch (.+?)(?: => .*)?\.\.\.$")


def _by_path(files: Sequence[FilePatch]) -> dict[str, FilePatch]:
    """Sections by the names a tool may print for them (GNU patch: new, git: old)."""
    out: dict[str, FilePatch] = {}
    for fp in files:
        for p in (fp.new_path, fp.old_path):
            if p:
                out.setdefault(p, fp)
    return out


def parse_gnu_patch(out: str, files: Sequence[FilePatch], reverse: bool) -> dict[int, Placement]:
    """Per-hunk results keyed by the patch-wide hunk index. Unmentioned hunks of a checked
    file applied at their expected place."""
    by_path = _by_path(files)
    res: dict[int, Placement] = {}
    cur: FilePatch | None = None
    for ln in out.splitlines():
        m = _PATCH_FILE.match(ln)
        if m:
            cur = by_path.get(m.group(1))
            if cur is not None:
                for h in cur.hunks:
                    start = h.new_start if reverse else h.old_start
                    res[h.index] = Placement(True, start)
            continue
        m = _PATCH_HUNK.match(ln)
        if m and cur is not None:
            k = int(m.group(1)) - 1
            if k >= len(cur.hunks):
                continue
            h = cur.hunks[k]
            res[h.index] = Placement(
                ok=m.group(2) == "succeeded",
                line=int(m.group(3)),
                fuzz=int(m.group(4) or 0),
                offset=int(m.group(5) or 0),
            )
    return res


def parse_git_apply(err: str, files: Sequence[FilePatch], reverse: bool) -> dict[int, Placement]:
    """Per-hunk offsets from a successful ``git apply --check -v``."""
    by_path = _by_path(files)
    res: dict[int, Placement] = {}
    cur: FilePatch | None = None
    for ln in err.splitlines():
        m = _GIT_CHECK.match(ln)
        if m:
            cur = by_path.get(m.group(1))
            if cur is not None:
                for h in cur.hunks:
                    res[h.index] = Placement(True, h.new_start if reverse else h.old_start)
            continue
        m = _GIT_HUNK.match(ln)
        if m and cur is not None:
            k = int(m.group(1)) - 1
            if k < len(cur.hunks):
                res[cur.hunks[k].index] = Placement(True, int(m.group(2)), int(m.group(3) or 0))
    return res


# ---- facts ------------------------------------------------------------------------------


@dataclass
class _Located:
    hunk: Hunk
    path: str  # where the file is in the scratch (the new name of an already-done rename)
    before_at: int | None  # 0-based place of the exact pre-image, if any
    after_at: int | None  # 0-based place of the exact post-image, if any


def _shares(lines: Sequence[bytes], h: Hunk, near: int) -> Shares:
    return Shares(
        bool(significant(h.added)), added_lines_nearby(lines, h, near), removed_lines_nearby(lines, h, near)
    )


def _near(found: tuple[int | None, float, str]) -> Near:
    return Near(*found)


def _facts(loc: _Located, lines: Sequence[bytes], rv: Placement | None, fw: Placement | None) -> HunkFacts:
    h = loc.hunk
    placed = (rv is not None and rv.ok) or (fw is not None and fw.ok)
    landing = None
    if fw is not None and fw.ok:
        landing = _shares(lines, h, (fw.line or h.old_start) - 1)
    return HunkFacts(
        index=h.index,
        path=loc.path,
        old_start=h.old_start,
        new_start=h.new_start,
        before_at=loc.before_at,
        after_at=loc.after_at,
        rev=rv,
        fwd=fw,
        at_old=_shares(lines, h, h.old_start - 1),
        at_new=_shares(lines, h, h.new_start - 1),
        at_landing=landing,
        # near matches are costly (difflib over a window): only for hunks no tool placed
        near_pre=None if placed else _near(near_match(lines, h, h.old_start - 1)),
        near_post=None if placed else _near(near_match(lines, post_as_pre(h), h.new_start - 1)),
    )


def _absence(scratch: Scratch, located: Sequence[_Located]) -> list[Absence]:
    everywhere: dict[str, set[bytes]] = {}
    out = []
    for loc in located:
        if loc.path not in everywhere:
            everywhere[loc.path] = {norm(ln) for ln in scratch.lines(loc.path)}
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


def _section_for(fp: FilePatch, where: str) -> bytes:
    """The section as the tools should see it: a rename already done becomes a plain
    modification of the new path."""
    if where == fp.old_path or not fp.new_path:
        return fp.raw
    out = [f"diff --git a/{where} b/{where}\n--- a/{where}\n+++ b/{where}\n".encode()]
    in_hunks = False
    for ln in fp.raw.splitlines(keepends=True):
        in_hunks = in_hunks or ln.startswith(b"@@")
        if in_hunks:
            out.append(ln)
    return b"".join(out)


def _renamed_view(fp: FilePatch, where: str) -> FilePatch:
    if where == fp.old_path:
        return fp
    return FilePatch(old_path=where, new_path=where, raw=b"", hunks=fp.hunks)


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
        return decide.none_exist(hunks, [fp.path for fp in missing])

    located: list[_Located] = []
    for fp, where in present_files:
        lines, data = scratch.lines(where), scratch.data(where)
        for h in fp.hunks:
            located.append(
                _Located(
                    h,
                    where,
                    find_block(lines, h.before, h.old_start - 1, data),
                    find_block(lines, h.after, h.new_start - 1, data),
                )
            )
    # a rename already done is checked under its new name: hand the tools a plain diff
    checkable = [(fp, where) for fp, where in present_files if not fp.binary]
    sections = b"".join(_section_for(fp, where) for fp, where in checkable)
    rev_raw = sections + b"".join(fp.raw for fp in new_present)
    fwd_raw = sections + b"".join(fp.raw for fp in new_files if fp not in new_present)
    tool_files = [_renamed_view(fp, where) for fp, where in checkable]

    # reverse: only worth a tool call when some post-image is there
    rev: dict[int, Placement] = {}
    whole_rev_ok = False
    if rev_raw and (any(loc.after_at is not None for loc in located) or new_present):
        if all(loc.after_at is not None for loc in located) and not missing:
            r = scratch.check_git_apply(rev_raw, reverse=True)
            if r.ok:
                whole_rev_ok = True
                rev = parse_git_apply(r.err(), tool_files, reverse=True)
        if not whole_rev_ok and located:
            r = scratch.run_patch(rev_raw, reverse=True, dry_run=True, fuzz=0)
            rev = parse_gnu_patch(r.out(), tool_files, reverse=True)

    fwd: dict[int, Placement] = {}
    whole_fwd_ok = False
    if fwd_raw:
        if all(loc.before_at is not None for loc in located) and not missing:
            r = scratch.check_git_apply(fwd_raw)
            if r.ok:
                whole_fwd_ok = True
                fwd = parse_git_apply(r.err(), tool_files, reverse=False)
        if not whole_fwd_ok and located:
            r = scratch.run_patch(fwd_raw, dry_run=True, fuzz=MAX_FUZZ)
            fwd = parse_gnu_patch(r.out(), tool_files, reverse=False)

    results: list[HunkResult] = []
    modified: list[int] = []
    for loc in located:
        i = loc.hunk.index
        res, mod = decide.judge_hunk(_facts(loc, scratch.lines(loc.path), rev.get(i), fwd.get(i)))
        results.append(res)
        if mod:
            modified.append(i)
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
    starts = {h.index: h.old_start for fp in files for h in fp.hunks}
    for res in results:
        res.patch_line = starts.get(res.index)
    results.sort(key=lambda r: (r.index == 0, r.index))
    d = decide.patch_verdict(results, whole_rev_ok, whole_fwd_ok, modified)
    if decide.wants_absence_check(d):
        d = decide.buggy_code_absent(d, _absence(scratch, located))
    return d
