"""What the tools would say, decided in-process where the answer is certain.

Most patches of an audit are the plain case: every hunk's exact pre-image sits exactly where
the patch says and its post-image is nowhere in the file (the fix applies cleanly), or the
other way round (the fix is in, as posted). For those ``git apply --check`` (one direction)
is certain to succeed with every hunk at its line, and run_tools would not call a tool for
the other direction at all (or only GNU patch, whose answer the verdict does not read):
the subprocesses cost more than everything else of the check. Anything less plain (an
offset, a CR, a rename, a mode or binary section, a missing newline at the end of a file,
the same path twice, a header git might read otherwise) goes to the real tools, which stay
the judge of every non-trivial case. tests/engine/test_fast.py checks the answers against
git apply and GNU patch, and tests/integration against the real Debian trees.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

from patchcheck.decide import Placement
from patchcheck.engine.scratch import Scratch
from patchcheck.engine.tools import GIT_APPLY_WORK, TOOL_WORK, Runs, Section
from patchcheck.text.diff import FilePatch

# the only header lines a plain git modification has: git reads nothing else from them
_HEADER = re.compile(
    rb"diff --git a/(\S+) b/(\S+)\n"
    rb"index [0-9a-f]{7,64}\.\.[0-9a-f]{7,64}(?: 100644| 100755)?\n"
    rb"--- a/(\S+)\n"
    rb"\+\+\+ b/(\S+)\n"
)
_HUNK_HEAD = re.compile(rb"@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_FIRST = operator.itemgetter(0)


def _trailing(fp: FilePatch) -> dict[int, int] | None:
    """Per hunk, its trailing context lines as git counts them, when the section is a git
    modification of one path whose hunks are nothing but ``' '``, ``'-'`` and ``'+'``
    lines ending in LF, exactly as many as the headers say, each changing something;
    else None."""
    m = _HEADER.match(fp.raw)
    if m is None or len({m.group(k) for k in (1, 2, 3, 4)}) != 1 or m.group(1).decode() != fp.old_path:
        return None
    if b"\r" in fp.raw:  # a CR anywhere (even past the hunks): the tools decide
        return None
    body = fp.raw[m.end() :].split(b"\n")
    out: dict[int, int] = {}
    i = 0
    for h in fp.hunks:
        if i >= len(body) or not _HUNK_HEAD.match(body[i]):
            return None
        n = len(h.before) + len(h.added)
        lines = body[i + 1 : i + 1 + n]
        if len(lines) != n or b"" in lines:
            return None
        kinds = bytes(map(_FIRST, lines))  # each line's first byte (map and itemgetter: C)
        if kinds.translate(None, b" -+"):
            return None
        changed = kinds.rstrip(b" ")
        if not changed:
            return None
        out[h.index] = len(kinds) - len(changed)
        i += 1 + n
    # after the hunks: nothing, or text git reads as no part of a patch (a mail signature)
    rest = body[i:]
    return out if not rest or rest == [b""] or rest[0] == b"-- " else None


def _at_its_place(s: Section, trailing: dict[int, int], reverse: bool) -> bool:
    """Every hunk's image for this direction is exactly where the patch says, where git
    apply looks first (the numbers agree hunk after hunk, the hunks are in order and do
    not overlap; a hunk without trailing context, which git anchors at the end of the
    file, ends there), and the image of the other direction is nowhere in the file."""
    lines = len(s.index.lines)
    shift = 0
    end = 0
    for h in s.fp.hunks:
        image, other = (h.after, h.before) if reverse else (h.before, h.after)
        at_map, other_map = (s.after_at, s.before_at) if reverse else (s.before_at, s.after_at)
        start = h.new_start if reverse else h.old_start
        if not image or not other or h.old_start < 1 or h.new_start < 1:
            return False
        if at_map.get(h.index) != start - 1 or other_map.get(h.index) is not None:
            return False
        if h.new_start - h.old_start != shift or h.old_start - 1 < end:
            return False
        if trailing[h.index] == 0 and start - 1 + len(image) != lines:
            return False
        shift += len(h.after) - len(h.before)
        end = h.old_start - 1 + len(h.before)
    return True


def certain_runs(
    scratch: Scratch,
    sections: Sequence[Section],
    new_present: Sequence[FilePatch],
    new_absent: Sequence[FilePatch],
    missing: bool,
) -> Runs | None:
    """The Runs run_tools would return, when they are certain without a tool; else None."""
    if not sections or new_present or new_absent or missing:
        return None
    if len({s.where for s in sections}) != len(sections):
        return None
    trailing: dict[int, int] = {}
    for s in sections:
        fp = s.fp
        if not s.exact_file or not fp.hunks or fp.rename or fp.copy or fp.binary or fp.mode_only:
            return None
        if fp.old_path != fp.new_path or s.where != fp.old_path or fp.old_mode or fp.new_mode:
            return None
        # a file without a final newline: git and GNU patch compare its last line their own way
        if not s.index.lines or not scratch.data(s.where).endswith(b"\n"):
            return None
        t = _trailing(fp)
        if t is None:
            return None
        trailing.update(t)
    if sum(len(s.fp.hunks) * len(s.index.lines) for s in sections) > GIT_APPLY_WORK:
        return None
    if all(_at_its_place(s, trailing, reverse=False) for s in sections):
        fwd = {h.index: Placement(True, h.old_start) for s in sections for h in s.fp.hunks}
        return Runs(fwd=fwd, whole_fwd_ok=True)
    if all(_at_its_place(s, trailing, reverse=True) for s in sections):
        # run_tools would still hand the forward direction to GNU patch; the verdict does
        # not read its answer when every hunk reverse-applies, but its cost limit stands
        if sum(s.cost(False) for s in sections) > TOOL_WORK:
            return None
        rev = {h.index: Placement(True, h.new_start) for s in sections for h in s.fp.hunks}
        return Runs(rev=rev, whole_rev_ok=True)
    return None
