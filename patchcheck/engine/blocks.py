"""Where a hunk's lines are in a file: exact block search, best near match, and the shares
of a hunk's significant added / removed lines found around a place. Pure functions on
lines and bytes; the engine feeds them scratch files, the rules in decide.py read the
numbers they return.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from patchcheck.text.diff import Hunk

NEAR_WINDOW = 400  # lines searched either side of a failed hunk's expected place


def norm(line: bytes) -> bytes:
    return b" ".join(line.split())


def find_block(lines: Sequence[bytes], block: Sequence[bytes], near: int, data: bytes | None = None) -> int | None:
    """0-based start of ``block`` in ``lines`` closest to ``near`` (0-based), or None.

    ``data``, when given, is the file ``lines`` came from (``data.splitlines()``): the
    search then runs as bytes.find on it, which is much faster than comparing lines."""
    if not block:
        return max(0, min(near, len(lines)))
    # CR line ends, or a block that is one empty line (an empty needle), take the slow path
    if data is not None and b"\r" not in data and (len(block) > 1 or block[0]):
        return _find_block_bytes(data, block, near)
    n = len(block)
    first = block[0]
    best: int | None = None
    for i, ln in enumerate(lines):
        if (
            ln == first
            and list(lines[i : i + n]) == list(block)
            and (best is None or abs(i - near) < abs(best - near))
        ):
            best = i
    return best


def _find_block_bytes(data: bytes, block: Sequence[bytes], near: int) -> int | None:
    """find_block on the bytes of a file with only \\n line ends: each hit of the joined
    block counts when it starts and ends on line boundaries."""
    if not data:
        return None
    needle = b"\n".join(block)
    size, m = len(data), len(needle)
    # at the very end of the file the block's last line is the file's last segment, which
    # splitlines() keeps only when it is not empty
    end_ok = block[-1] != b""
    best: int | None = None
    line, counted = 0, 0  # line number of offset ``counted``
    p = data.find(needle)
    while p >= 0:
        e = p + m
        if (p == 0 or data[p - 1] == 0x0A) and ((e < size and data[e] == 0x0A) or (e == size and end_ok)):
            line += data.count(b"\n", counted, p)
            counted = p
            if best is None or abs(line - near) < abs(best - near):
                best = line
            elif line > near:
                break  # later hits are only further away
        p = data.find(needle, p + 1)
    return best


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


def share_nearby(lines: Sequence[bytes], hunk: Hunk, near: int, wanted: list[bytes]) -> float:
    """Share of ``wanted`` (normalised lines) found in a window around ``near``."""
    if not wanted:
        return 0.0
    span = len(hunk.before) + len(hunk.after) + 10
    window = {norm(ln) for ln in lines[max(0, near - span) : near + span]}
    return sum(1 for w in wanted if w in window) / len(wanted)


def added_lines_nearby(lines: Sequence[bytes], hunk: Hunk, near: int) -> float:
    """Share of the hunk's significant added lines already found around ``near``."""
    return share_nearby(lines, hunk, near, significant(hunk.added))


def removed_lines_nearby(lines: Sequence[bytes], hunk: Hunk, near: int) -> float:
    """Share of the significant lines the hunk removes (and does not re-add) still there."""
    return share_nearby(lines, hunk, near, removed_only(hunk))


def post_as_pre(h: Hunk) -> Hunk:
    """The hunk turned around: its post-image as the pre-image (to look for the fix)."""
    return Hunk(h.index, h.new_start, h.new_len, h.old_start, h.old_len, h.after, h.before, h.added, h.removed)
