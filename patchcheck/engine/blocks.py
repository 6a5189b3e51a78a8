"""Where a hunk's lines are in a file: exact block search, best near match, and the shares
of a hunk's significant added / removed lines found around a place. Pure functions on
lines and bytes; the engine feeds them scratch files, the rules in decide.py read the
numbers they return.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate

from patchcheck.text.diff import Hunk

NEAR_WINDOW = 400  # lines searched either side of a failed hunk's expected place
_UNSURE = -1  # LineIndex._find_bytes could not tell


def norm(line: bytes) -> bytes:
    return b" ".join(line.split())


class LineIndex:
    """One file's lines and, built on first use, where each distinct line occurs.

    A block is looked up as bytes in the LF-joined file, from the wanted place outwards
    (C-speed searches; most blocks are found at or near their place). When that meets too
    many matches that are no whole lines, or a line holds an LF, the block is looked up from
    its rarest line's positions instead: one pass over the file builds them, then each
    block costs a little.
    """

    _MISSES = 64  # partial-line matches skipped before the line positions take over
    _WINDOW = 2000  # lines searched by bytes either side of the expected place
    _SCANS = 32  # whole-file scans for an absent block before the line positions take over

    def __init__(self, lines: list[bytes], data: bytes | None = None) -> None:
        """``data``: the file's bytes, when ``lines`` are its ``splitlines()`` (saves joining
        them again for the byte search)."""
        self.lines = lines
        self._data = data
        self._where: dict[bytes, list[int]] | None = None
        self._normed: list[bytes] | None = None
        self._text: tuple[bytes | None] | None = None  # the joined lines, once made
        self._offsets: list[int] | None = None  # each line's offset in them
        self._scans = 0  # whole-file scans done for absent blocks

    def _joined(self) -> bytes | None:
        """The lines joined by LF (None when a line holds an LF: byte offsets would not be
        lines)."""
        if self._text is None:
            data = self._data
            if data is not None and b"\r" not in data:
                joined = data[:-1] if data.endswith(b"\n") else data  # = the lines joined by LF
            else:
                joined = b"\n".join(self.lines)
                if joined.count(b"\n") != max(0, len(self.lines) - 1):
                    joined = None
            self._text = (joined,)
        return self._text[0]

    def _starts(self) -> list[int]:
        """Each line's offset in the joined lines."""
        if self._offsets is None:
            # the lengths plus their LFs, summed up (at C speed)
            self._offsets = list(accumulate(map((1).__add__, map(len, self.lines)), initial=0))
            self._offsets.pop()
        return self._offsets

    def _find_bytes(self, block: Sequence[bytes], near: int) -> int | None:
        """``find`` by byte search; _UNSURE when it cannot tell."""
        if self._where is not None or not self.lines or any(b"\n" in ln for ln in block):
            return _UNSURE
        joined = self._joined()
        if joined is None:
            return _UNSURE
        pat = b"\n".join(block)
        size, end = len(pat), len(joined)
        if size == 0:
            return _UNSURE  # one empty line: every offset "matches"; the line index knows
        if self._scans < self._SCANS:
            # absent from the whole file (a fix's post-image, mostly): one C scan says so,
            # cheaper than the line positions for the few blocks a file is asked about
            self._scans += 1
            if joined.find(pat) == -1:
                return None
        starts = self._starts()
        misses = 0

        def whole(p: int) -> bool:
            return (p == 0 or joined[p - 1] == 10) and (
                p + size == end or joined[p + size : p + size + 1] == b"\n"
            )

        # Search a window around ``near`` only: a hit there is closer than anything outside
        # it, and a block absent from the window goes to the line index (built once per
        # file), so that many hunks never rescan a large file each (quadratic).
        w_hi = min(max(near, 0) + self._WINDOW, len(starts))
        w_lo = max(min(near, len(starts)) - self._WINDOW, 0)
        fwd_end = end if w_hi >= len(starts) else min(end, starts[w_hi] - 1 + size)
        above: int | None = None
        lo = max(near, 0)
        if lo < len(starts):
            p = joined.find(pat, starts[lo], fwd_end)
            while p != -1 and not whole(p):
                misses += 1
                if misses > self._MISSES:
                    return _UNSURE
                p = joined.find(pat, p + 1, fwd_end)
            above = None if p == -1 else bisect_left(starts, p)
        below: int | None = None
        hi = min(near, len(starts)) - 1
        if hi >= 0:
            q = joined.rfind(pat, starts[w_lo], starts[hi] + size)
            while q != -1 and not whole(q):
                misses += 1
                if misses > self._MISSES:
                    return _UNSURE
                q = joined.rfind(pat, starts[w_lo], q + size - 1)
            below = None if q == -1 else bisect_left(starts, q)
        if below is not None and (above is None or near - below <= above - near):
            return below
        if above is None:
            return _UNSURE  # not in the window: the line index answers
        return above

    def _positions(self) -> dict[bytes, list[int]]:
        if self._where is None:
            where: dict[bytes, list[int]] = {}
            for i, ln in enumerate(self.lines):
                where.setdefault(ln, []).append(i)
            self._where = where
        return self._where

    def normed(self) -> list[bytes]:
        """The lines with whitespace runs squeezed (see ``norm``)."""
        if self._normed is None:
            self._normed = [norm(ln) for ln in self.lines]
        return self._normed

    def find(self, block: Sequence[bytes], near: int) -> int | None:
        """0-based start of ``block`` closest to ``near`` (0-based; the earlier of two at the
        same distance), or None."""
        lines = self.lines
        if not block:
            return max(0, min(near, len(lines)))
        if near >= 0 and lines[near : near + len(block)] == list(block):
            return near  # the common case: exactly where the patch says (no closer place)
        got = self._find_bytes(block, near)
        if got != _UNSURE:
            return got
        where = self._positions()
        # the anchor: the block's rarest line (a line found nowhere settles it)
        k, starts = 0, where.get(block[0], [])
        for j, ln in enumerate(block):
            at = where.get(ln)
            if not at:
                return None
            if len(at) < len(starts) or j == 0:
                k, starts = j, at
            if len(starts) == 1:
                break
        n = len(block)
        want = list(block)

        def fits(i: int) -> bool:
            return i >= 0 and i + n <= len(lines) and lines[i : i + n] == want

        # walk the anchor's positions outward from ``near``: below and above in turn,
        # nearest first, the lower one winning a tie
        hi = bisect_left(starts, near + k)
        lo = hi - 1
        while lo >= 0 or hi < len(starts):
            below = near - (starts[lo] - k) if lo >= 0 else None
            above = (starts[hi] - k) - near if hi < len(starts) else None
            if above is None or (below is not None and below <= above):
                i = starts[lo] - k
                lo -= 1
            else:
                i = starts[hi] - k
                hi += 1
            if fits(i):
                return i
        return None


def find_block(lines: Sequence[bytes], block: Sequence[bytes], near: int) -> int | None:
    """0-based start of ``block`` in ``lines`` closest to ``near``, or None (one-off
    searches; the engine keeps a LineIndex per file)."""
    return LineIndex(list(lines)).find(block, near)


def significant(lines: Sequence[bytes]) -> list[bytes]:
    """Lines that say something: not blank, not a lone brace or comment delimiter."""
    out = []
    for ln in lines:
        n = norm(ln)
        if n and n not in (b"{", b"}", b"};", b"*/", b"/*", b"*", b"else", b"} else {"):
            out.append(n)
    return out


def near_match(lines: Sequence[bytes], hunk: Hunk, near: int) -> tuple[int | None, float, str]:
    """Best place for the hunk's pre-image around ``near``: (1-based line, ratio, diff)."""
    want = [ln.decode("utf-8", "replace") for ln in hunk.before]
    if not want or not lines:
        return None, 0.0, ""
    n = len(want)
    lo = max(0, near - NEAR_WINDOW)
    hi = min(len(lines), near + NEAR_WINDOW)
    text = [ln.decode("utf-8", "replace") for ln in lines[lo:hi]]
    best_i, best_r = None, 0.0
    sm = difflib.SequenceMatcher(autojunk=False)
    sm.set_seq2(want)
    for i in range(0, max(1, len(text) - n + 1)):
        sm.set_seq1(text[i : i + n])
        if sm.real_quick_ratio() <= best_r or sm.quick_ratio() <= best_r:
            continue
        r = sm.ratio()
        if r > best_r or (r == best_r and best_i is not None and abs(lo + i - near) < abs(lo + best_i - near)):
            best_i, best_r = i, r
    if best_i is None or best_r < 0.3:
        return None, best_r, ""
    got = text[best_i : best_i + n]
    line = lo + best_i + 1
    diff = list(difflib.unified_diff(want, got, "expected (patch)", f"tree (line {line})", lineterm="", n=1))
    if len(diff) > 24:
        diff = diff[:24] + [f"... ({len(diff) - 24} more lines)"]
    return line, best_r, "\n".join(diff)


def removed_only(hunk: Hunk) -> list[bytes]:
    """Significant lines the hunk removes and does not add back: the buggy code."""
    kept = set(significant(hunk.added))
    return [r for r in significant(hunk.removed) if r not in kept]


def share_nearby(index: LineIndex, hunk: Hunk, near: int, wanted: list[bytes]) -> float:
    """Share of ``wanted`` (normalised lines) found in a window around ``near``."""
    if not wanted:
        return 0.0
    span = len(hunk.before) + len(hunk.after) + 10
    window = set(index.normed()[max(0, near - span) : max(0, near + span)])
    return sum(1 for w in wanted if w in window) / len(wanted)


def added_lines_nearby(index: LineIndex, hunk: Hunk, near: int) -> float:
    """Share of the hunk's significant added lines already found around ``near``."""
    return share_nearby(index, hunk, near, significant(hunk.added))


def removed_lines_nearby(index: LineIndex, hunk: Hunk, near: int) -> float:
    """Share of the significant lines the hunk removes (and does not re-add) still there."""
    return share_nearby(index, hunk, near, removed_only(hunk))


def post_as_pre(h: Hunk) -> Hunk:
    """The hunk turned around: its post-image as the pre-image (to look for the fix)."""
    return Hunk(h.index, h.new_start, h.new_len, h.old_start, h.old_len, h.after, h.before, h.added, h.removed)


def deletion_differs(lines: Sequence[bytes], hunks: Sequence[Hunk]) -> int | None:
    """For a section that deletes its file: the first line (1-based) where ``lines`` differ
    from what its hunks remove (all of the file, in order), or None when they are the same.
    A CR before the line end is no difference (the line index drops it, a CRLF mail too)."""
    want = [ln.removesuffix(b"\r") for h in hunks for ln in h.before]
    have = [ln.removesuffix(b"\r") for ln in lines]
    for i, (a, b) in enumerate(zip(have, want, strict=False)):
        if a != b:
            return i + 1
    return None if len(have) == len(want) else min(len(have), len(want)) + 1


# a line git takes for a hunk's @@ heading (its default and C drivers): at column 0, a
# letter, '_' or '$' first, and not a goto label
_HEADING = re.compile(rb"^[A-Za-z_$]")
_LABEL = re.compile(rb"^[A-Za-z_][A-Za-z_0-9]*:\s*(?:$|/[/*])")
_CALL = re.compile(rb"([A-Za-z_][A-Za-z_0-9]*)\s*\(")


def func_name(section: bytes) -> str | None:
    """The function a hunk's @@ heading names: the identifier before its first '(' (none
    for a heading that ends in ';': a declaration or a macro call, no definition)."""
    m = _CALL.search(section)
    return m.group(1).decode("ascii") if m and not section.rstrip().endswith(b";") else None


def in_function(lines: Sequence[bytes], line: int, name: str) -> bool:
    """Whether 1-based ``line`` is in function ``name``: the heading git would give a hunk
    starting there (the nearest line above it that git takes for one; a declaration or
    a macro call ending in ';', e.g. EXPORT_SYMBOL, is skipped) calls it."""
    want = re.compile(rb"\b" + re.escape(name.encode()) + rb"\s*\(")
    for i in range(min(line - 1, len(lines)) - 1, -1, -1):
        ln = lines[i]
        if _HEADING.match(ln) and not _LABEL.match(ln) and not ln.rstrip().endswith(b";"):
            return want.search(ln) is not None
    return False
