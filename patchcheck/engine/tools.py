"""The tools' side of grading: what git apply and GNU patch are given, and what they said.

Both run on the scratch copy, both directions, in dry-run / --check mode. Their input is
trimmed to what can possibly succeed, because each tool pays for a hunk it cannot place
with a search of the whole file (GNU patch) or for every hunk with a copy of the whole
file (git apply): a hostile mail with thousands of hunks would otherwise cost hours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from patchcheck.decide import Placement
from patchcheck.engine.blocks import LineIndex
from patchcheck.engine.scratch import Scratch
from patchcheck.errors import SeriesError
from patchcheck.text.diff import FilePatch, Hunk

MAX_FUZZ = 2
# git apply copies the whole file image once per hunk: above this many hunk x line steps
# (about half a second of git) the whole-patch check is left to GNU patch
GIT_APPLY_WORK = 200_000_000
# GNU patch searches the file line by line for a hunk not at its place (the whole file, per
# fuzz level, for one that needs fuzz): above this many line steps a patch is refused
TOOL_WORK = 300_000_000


class TooCostly(SeriesError):
    """A patch whose hunks would take the tools minutes to place (a hostile mail)."""


class NotAPatch(SeriesError):
    """The tools refuse the mail's diff as a patch (not a hunk that fails): no verdict."""


_CORRUPT = re.compile(r"^error: (corrupt .*|patch fragment without header.*|No valid patches in input.*)$", re.M)
_MALFORMED = re.compile(r"^patch: \*\*\*\* (malformed patch.*|Only garbage was found.*)$", re.M)


def refusal(git_err: str, gnu_out: str | None) -> str | None:
    """Why git (and GNU patch, when asked: ``gnu_out``) refuse a diff as no patch at all,
    or None when they read it (its hunks may still fail)."""
    g = _CORRUPT.search(git_err)
    if g is None:
        return None
    if gnu_out is None:
        return f"git apply: {g.group(1)}"
    p = _MALFORMED.search(gnu_out)
    return f"git apply: {g.group(1)}; GNU patch: {p.group(1)}" if p else None


_PATCH_FILE = re.compile(r"^(?:checking|patching) file (.+?)(?: \((?:renamed|copied) from .*\))?$")
_PATCH_HUNK = re.compile(
    r"^Hunk #(\d+) (succeeded|FAILED|ignored) at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?"
)
_GIT_HUNK = re.compile(r"^Hunk #(\d+) succeeded at (\d+)(?: \(offset (-?\d+) lines?\))?")
_GIT_CHECK = re.compile(r"^Checking patch (.+?)(?: => .*)?\.\.\.$")


# ---- tool output ------------------------------------------------------------------------


class _InOrder:
    """The sections a tool reports on, matched to the names it prints in order: each tool
    prints one line per section, so a path named by two sections (the same file twice, a
    change to ``a`` and a copy ``a -> b``) gets each section's result in turn. GNU patch
    prints a section's new name, git its old one: either matches."""

    def __init__(self, files: Sequence[FilePatch]) -> None:
        self._pending = list(files)

    def take(self, name: str) -> FilePatch | None:
        for k, fp in enumerate(self._pending):
            if name in (fp.new_path, fp.old_path):
                return self._pending.pop(k)
        return None


def parse_gnu_patch(out: str, files: Sequence[FilePatch], reverse: bool) -> dict[int, Placement]:
    """Per-hunk results keyed by the patch-wide hunk index. Unmentioned hunks of a checked
    file applied at their expected place."""
    sections = _InOrder(files)
    res: dict[int, Placement] = {}
    cur: FilePatch | None = None
    for ln in out.splitlines():
        m = _PATCH_FILE.match(ln)
        if m:
            cur = sections.take(m.group(1))
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
    """Per-hunk offsets from a successful ``git apply --check -v``. With ``-R`` git gives
    the offset's sign from the post-image's side: turned round to match GNU patch's (a
    positive offset: found later in the file than the patch says)."""
    sections = _InOrder(files)
    res: dict[int, Placement] = {}
    cur: FilePatch | None = None
    for ln in err.splitlines():
        m = _GIT_CHECK.match(ln)
        if m:
            cur = sections.take(m.group(1))
            if cur is not None:
                for h in cur.hunks:
                    res[h.index] = Placement(True, h.new_start if reverse else h.old_start)
            continue
        m = _GIT_HUNK.match(ln)
        if m and cur is not None:
            k = int(m.group(1)) - 1
            if k < len(cur.hunks):
                offset = int(m.group(3) or 0)
                res[cur.hunks[k].index] = Placement(True, int(m.group(2)), -offset if reverse else offset)
    return res


# ---- tool input -------------------------------------------------------------------------


def section_for(fp: FilePatch, where: str) -> bytes:
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


def split_hunks(raw: bytes) -> tuple[bytes, list[bytes]]:
    """A section's header, and the text of each of its hunks."""
    head: list[bytes] = []
    chunks: list[list[bytes]] = []
    for ln in raw.splitlines(keepends=True):
        if ln.startswith(b"@@"):
            chunks.append([])
        (chunks[-1] if chunks else head).append(ln)
    return b"".join(head), [b"".join(c) for c in chunks]


def _common_run(a: Sequence[bytes], b: Sequence[bytes], from_end: bool) -> int:
    n = 0
    for x, y in zip(reversed(a) if from_end else a, reversed(b) if from_end else b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _fuzz_core(h: Hunk) -> list[bytes]:
    """The part of the pre-image GNU patch compares even at the highest fuzz: fuzz drops up
    to MAX_FUZZ context lines at each end (lines common to both images, counted here
    generously, so the core is never longer than what GNU patch compares)."""
    lead = min(MAX_FUZZ, _common_run(h.before, h.after, False))
    trail = min(MAX_FUZZ, _common_run(h.before, h.after, True))
    return list(h.before[lead : max(lead, len(h.before) - trail)])


def _no_cr(lines: Sequence[bytes]) -> list[bytes]:
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


@dataclass
class Section:
    """One file section the tools check: the patch's section, where its file is in the
    scratch, and which of its hunks can possibly succeed in each direction."""

    fp: FilePatch
    where: str
    index: LineIndex
    exact_file: bool  # no CR anywhere in the file: the line index sees lines as the tools do
    before_at: dict[int, int | None] = field(default_factory=dict)  # exact pre-image, per hunk
    after_at: dict[int, int | None] = field(default_factory=dict)  # exact post-image, per hunk

    def view(self) -> FilePatch:
        if self.where == self.fp.old_path:
            return self.fp
        return FilePatch(old_path=self.where, new_path=self.where, raw=b"", hunks=self.fp.hunks)

    def _at(self, h: Hunk, reverse: bool) -> int | None:
        """Where the exact image the direction needs is (GNU patch drops the CRs of a
        patch sent with CRLF line ends: so does this search)."""
        at = self.after_at.get(h.index) if reverse else self.before_at.get(h.index)
        image = h.after if reverse else h.before
        if at is None and any(ln.endswith(b"\r") for ln in image):
            at = self.index.find(_no_cr(image), (h.new_start if reverse else h.old_start) - 1)
        return at

    def can_succeed(self, h: Hunk, reverse: bool) -> bool:
        if not self.exact_file or self._at(h, reverse) is not None:
            return True
        if reverse:  # reverse runs take no fuzz: the exact post-image must be somewhere
            return False
        core = _no_cr(_fuzz_core(h))
        return not core or self.index.find(core, h.old_start - 1) is not None

    def cost(self, reverse: bool) -> int:
        """About how many lines GNU patch compares to place this section's hunks: from
        where the patch says to the nearest exact image, or the whole file per fuzz level
        for a hunk that has none (a hunk that cannot succeed is not handed over)."""
        lines = len(self.index.lines)
        total = 0
        for h in self.fp.hunks:
            if not self.exact_file:
                total += lines * (1 if reverse else MAX_FUZZ + 1)
                continue
            at = self._at(h, reverse)
            if at is not None:
                total += abs(at - ((h.new_start if reverse else h.old_start) - 1))
            elif self.can_succeed(h, reverse):
                total += lines * MAX_FUZZ
        return total

    def trimmed(self, reverse: bool) -> tuple[bytes, FilePatch | None]:
        """The section's text and view with only the hunks that can succeed (none: b"")."""
        raw, view = section_for(self.fp, self.where), self.view()
        keep = [h for h in self.fp.hunks if self.can_succeed(h, reverse)]
        if len(keep) == len(self.fp.hunks):
            return raw, view
        head, chunks = split_hunks(raw)
        if len(chunks) != len(self.fp.hunks):
            return raw, view  # the hunks cannot be told apart: hand it over whole
        if not keep:
            return b"", None
        wanted = {h.index for h in keep}
        body = b"".join(c for h, c in zip(self.fp.hunks, chunks, strict=True) if h.index in wanted)
        return head + body, FilePatch(old_path=view.old_path, new_path=view.new_path, raw=b"", hunks=keep)


@dataclass
class Runs:
    """What the tools said: per-hunk placements each way, and whether the whole patch
    applies as posted each way (git apply, or GNU patch for patches too big for git)."""

    rev: dict[int, Placement] = field(default_factory=dict)
    fwd: dict[int, Placement] = field(default_factory=dict)
    whole_rev_ok: bool = False
    whole_fwd_ok: bool = False


def _gnu(
    scratch: Scratch, sections: Sequence[Section], extra: bytes, reverse: bool
) -> tuple[dict[int, Placement], bool]:
    """GNU patch's dry run on the trimmed sections (+ ``extra`` whole sections): placements,
    and whether every hunk was placed without fuzz and nothing was left out. TooCostly when
    the search would take minutes."""
    cost = sum(s.cost(reverse) for s in sections)
    if cost > TOOL_WORK:
        raise TooCostly(
            f"placing its hunks {'in reverse ' if reverse else ''}would take GNU patch about {cost:,} "
            f"line comparisons (limit {TOOL_WORK:,}): too costly to check"
        )
    raws: list[bytes] = []
    views: list[FilePatch] = []
    whole = True
    for s in sections:
        raw, view = s.trimmed(reverse)
        whole = whole and view is not None and len(view.hunks) == len(s.fp.hunks)
        if view is not None:
            raws.append(raw)
            views.append(view)
    diff = b"".join(raws) + extra
    if not diff:
        return {}, False
    r = scratch.run_patch(diff, reverse=reverse, dry_run=True, fuzz=0 if reverse else MAX_FUZZ)
    if not r.ok and _MALFORMED.search(r.out() + r.err()):
        why = refusal(scratch.check_git_apply(diff, reverse=reverse).err(), r.out() + r.err())
        if why:
            raise NotAPatch(f"not a valid patch: {why}")
    placed = parse_gnu_patch(r.out(), views, reverse=reverse)
    # as posted: no fuzz, and not only after GNU patch dropped the CRs of a CRLF mail
    as_posted = "Stripping trailing CRs" not in r.out()
    whole = whole and r.ok and as_posted and all(p.ok and p.fuzz == 0 for p in placed.values())
    return placed, whole


def run_tools(
    scratch: Scratch,
    sections: Sequence[Section],
    before_at: dict[int, int | None],
    new_present: Sequence[FilePatch],
    new_absent: Sequence[FilePatch],
    missing: bool,
) -> Runs:
    """Both directions. git apply is asked first when every image is there (it alone says
    whether the patch applies as posted); GNU patch places hunk by hunk otherwise."""
    out = Runs()
    whole = b"".join(section_for(s.fp, s.where) for s in sections)
    views = [s.view() for s in sections]
    small = sum(len(s.fp.hunks) * len(s.index.lines) for s in sections) <= GIT_APPLY_WORK
    after = [a for s in sections for a in s.after_at.values()]
    hunks = any(s.fp.hunks for s in sections)
    new_present_raw = b"".join(fp.raw for fp in new_present)
    # reverse: only worth a tool call when some post-image is there
    if (whole or new_present_raw) and (any(a is not None for a in after) or new_present):
        if small and all(a is not None for a in after) and not missing:
            r = scratch.check_git_apply(whole + new_present_raw, reverse=True)
            if r.ok:
                out.whole_rev_ok = True
                out.rev = parse_git_apply(r.err(), views, reverse=True)
        if not out.whole_rev_ok and hunks:
            out.rev, gnu_whole = _gnu(scratch, sections, new_present_raw, reverse=True)
            out.whole_rev_ok = not small and gnu_whole and not missing
    new_absent_raw = b"".join(fp.raw for fp in new_absent)
    if whole or new_absent_raw:
        if small and all(b is not None for b in before_at.values()) and not missing:
            r = scratch.check_git_apply(whole + new_absent_raw)
            if r.ok:
                out.whole_fwd_ok = True
                out.fwd = parse_git_apply(r.err(), views, reverse=False)
        if not out.whole_fwd_ok and hunks:
            out.fwd, gnu_whole = _gnu(scratch, sections, new_absent_raw, reverse=False)
            out.whole_fwd_ok = not small and gnu_whole and not missing
    return out
