"""Test-apply engine: a series' patches against a scratch copy of only the files they touch.

For each patch, in series order, every hunk gets a status from real tools (git apply for the
whole-patch verdict, GNU patch for per-hunk offset/fuzz), both directions. Python-side block
searches only decide which tool calls can possibly succeed (to skip the rest) and explain
failures (best near match). Nothing is ever written into the user's tree.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchcheck.model import Fix, HunkResult, HunkStatus, PatchMail, PatchResult, Series, Verdict
from patchcheck.sys import git, proc
from patchcheck.text.diff import FilePatch, Hunk, MalformedPatch, parse_diff
from patchcheck.trees.base import TreeView
from patchcheck.verdict import weakest_method

if TYPE_CHECKING:
    from patchcheck.evidence.history import History

MAX_FUZZ = 2
_NEAR_WINDOW = 400  # lines searched either side of a failed hunk's expected place


# ---------------------------------------------------------------------------------------
# block search helpers (pure)


def _norm(line: bytes) -> bytes:
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


def _significant(lines: Sequence[bytes]) -> list[bytes]:
    """Lines that say something: not blank, not a lone brace or comment delimiter."""
    out = []
    for ln in lines:
        n = _norm(ln)
        if n and n not in (b"{", b"}", b"};", b"*/", b"/*", b"*", b"else", b"} else {"):
            out.append(n)
    return out


def near_match(lines: Sequence[bytes], hunk: Hunk, near: int) -> tuple[int | None, float, str]:
    """Best place for the hunk's pre-image around ``near``: (1-based line, ratio, diff)."""
    want = [ln.decode("utf-8", "replace") for ln in hunk.before]
    if not want or not lines:
        return None, 0.0, ""
    n = len(want)
    lo = max(0, near - _NEAR_WINDOW)
    hi = min(len(lines), near + _NEAR_WINDOW)
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


def _removed_only(hunk: Hunk) -> list[bytes]:
    """Significant lines the hunk removes and does not add back: the buggy code."""
    kept = set(_significant(hunk.added))
    return [r for r in _significant(hunk.removed) if r not in kept]


def _share_nearby(lines: Sequence[bytes], hunk: Hunk, near: int, wanted: list[bytes]) -> float:
    """Share of ``wanted`` (normalised lines) found in a window around ``near``."""
    if not wanted:
        return 0.0
    span = len(hunk.before) + len(hunk.after) + 10
    window = {_norm(ln) for ln in lines[max(0, near - span) : near + span]}
    return sum(1 for w in wanted if w in window) / len(wanted)


def added_lines_nearby(lines: Sequence[bytes], hunk: Hunk, near: int) -> float:
    """Share of the hunk's significant added lines already found around ``near``."""
    return _share_nearby(lines, hunk, near, _significant(hunk.added))


def removed_lines_nearby(lines: Sequence[bytes], hunk: Hunk, near: int) -> float:
    """Share of the significant lines the hunk removes (and does not re-add) still there."""
    return _share_nearby(lines, hunk, near, _removed_only(hunk))


# ---------------------------------------------------------------------------------------
# tool output parsing

_PATCH_FILE = re.compile(r"^(?:checking|patching) file (.+?)(?: \(renamed from .*\))?$")
_PATCH_HUNK = re.compile(
    r"^Hunk #(\d+) (succeeded|FAILED|ignored) at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?"
)
_GIT_HUNK = re.compile(r"^Hunk #(\d+) succeeded at (\d+)(?: \(offset (-?\d+) lines?\))?")
_GIT_CHECK = re.compile(r"^Checking patch (.+?)(?: => .*)?\.\.\.$")


@dataclass
class ToolHunk:
    ok: bool
    line: int | None = None
    offset: int = 0
    fuzz: int = 0


def _by_path(files: Sequence[FilePatch]) -> dict[str, FilePatch]:
    """Sections by the names a tool may print for them (GNU patch: new, git: old)."""
    out: dict[str, FilePatch] = {}
    for fp in files:
        for p in (fp.new_path, fp.old_path):
            if p:
                out.setdefault(p, fp)
    return out


def parse_gnu_patch(out: str, files: Sequence[FilePatch], reverse: bool) -> dict[int, ToolHunk]:
    """Per-hunk results keyed by the patch-wide hunk index. Unmentioned hunks of a checked
    file applied at their expected place."""
    by_path = _by_path(files)
    res: dict[int, ToolHunk] = {}
    cur: FilePatch | None = None
    for ln in out.splitlines():
        m = _PATCH_FILE.match(ln)
        if m:
            cur = by_path.get(m.group(1))
            if cur is not None:
                for h in cur.hunks:
                    start = h.new_start if reverse else h.old_start
                    res[h.index] = ToolHunk(True, start)
            continue
        m = _PATCH_HUNK.match(ln)
        if m and cur is not None:
            k = int(m.group(1)) - 1
            if k >= len(cur.hunks):
                continue
            h = cur.hunks[k]
            res[h.index] = ToolHunk(
                ok=m.group(2) == "succeeded",
                line=int(m.group(3)),
                fuzz=int(m.group(4) or 0),
                offset=int(m.group(5) or 0),
            )
    return res


def parse_git_apply(err: str, files: Sequence[FilePatch], reverse: bool) -> dict[int, ToolHunk]:
    """Per-hunk offsets from a successful ``git apply --check -v``."""
    by_path = _by_path(files)
    res: dict[int, ToolHunk] = {}
    cur: FilePatch | None = None
    for ln in err.splitlines():
        m = _GIT_CHECK.match(ln)
        if m:
            cur = by_path.get(m.group(1))
            if cur is not None:
                for h in cur.hunks:
                    res[h.index] = ToolHunk(True, h.new_start if reverse else h.old_start)
            continue
        m = _GIT_HUNK.match(ln)
        if m and cur is not None:
            k = int(m.group(1)) - 1
            if k < len(cur.hunks):
                res[cur.hunks[k].index] = ToolHunk(True, int(m.group(2)), int(m.group(3) or 0))
    return res


@dataclass
class TreeContext:
    """What a tree offers beyond its files, gathered once per tree and shared by all bugs."""

    history: History | None = None  # git history index, for git trees
    changelog: str | None = None  # distro changelog text, for package trees
    object_dirs: tuple[Path, ...] = field(default_factory=tuple)  # git objects, for 3way


# ---------------------------------------------------------------------------------------
# scratch area: copies of the touched files only


class _Roots:
    """One scratch root per thread, reused by every series that thread checks: making and
    removing a temp folder tree per series cost more than the checks. All are removed at
    exit (and by ``cleanup``)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Path] = []
        self._hooked = False

    def take(self) -> Path | None:
        """This thread's root, or None while a Scratch of this thread already holds it."""
        if getattr(self._local, "busy", False):
            return None
        root: Path | None = getattr(self._local, "root", None)
        if root is None or not (root / "t").is_dir():
            root = Path(tempfile.mkdtemp(prefix="patchcheck-"))
            (root / "t").mkdir()
            with self._lock:
                self._all.append(root)
                if not self._hooked:
                    atexit.register(self.cleanup)
                    self._hooked = True
            self._local.root = root
        self._local.busy = True
        return root

    def give_back(self) -> None:
        self._local.busy = False

    def cleanup(self) -> None:
        with self._lock:
            roots, self._all = self._all, []
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)


_ROOTS = _Roots()


class Scratch:
    """A temp folder holding copies of just the files a series touches.

    Later patches of a series see the earlier ones applied here, never in the tree. The
    folder is the thread's reused root: on close only the files this series may have put
    there are deleted (folders stay for the next series; they hold no files).
    """

    def __init__(self, tree: TreeView) -> None:
        self.tree = tree
        shared = _ROOTS.take()
        self._shared = shared is not None
        self.root = shared if shared is not None else Path(tempfile.mkdtemp(prefix="patchcheck-"))
        self.work = self.root / "t"
        self.work.mkdir(exist_ok=True)
        self._loaded: dict[str, bool] = {}
        self._paths: set[str] = set()  # every path a file of this series may be at
        # file bytes and lines per path, for the current scratch state: the block searches
        # of every hunk read them, and only a real (not --dry-run) patch run changes them
        self._data: dict[str, bytes] = {}
        self._lines: dict[str, list[bytes]] = {}

    def ensure(self, path: str) -> bool:
        """Copy ``path`` from the tree on first use; True when it exists (here)."""
        if path not in self._loaded:
            data = self.tree.read(path)
            dest = self.work / path
            self._paths.add(path)
            if data is not None:
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
                except OSError:
                    self._clear_way(path)  # a folder or file an earlier series left in the way
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
                self._data[path] = data
                self._lines.pop(path, None)
            else:
                with contextlib.suppress(OSError):
                    dest.unlink()  # never trust a file an earlier series left here
            self._loaded[path] = data is not None
        return (self.work / path).is_file()

    def data(self, path: str) -> bytes:
        """The file's bytes in the scratch (empty when it is not there)."""
        got = self._data.get(path)
        if got is None:
            try:
                got = (self.work / path).read_bytes()
            except OSError:
                got = b""
            self._data[path] = got
        return got

    def lines(self, path: str) -> list[bytes]:
        got = self._lines.get(path)
        if got is None:
            got = self._lines[path] = self.data(path).splitlines()
        return got

    def _changed(self) -> None:
        self._data.clear()
        self._lines.clear()

    def _clear_way(self, path: str) -> None:
        """Remove what is in the way of writing ``path`` (not a file of this series)."""
        cur = self.work
        for part in Path(path).parts:
            cur = cur / part
            if cur.is_symlink() or cur.is_file():
                cur.unlink()
                return
        if cur.is_dir():
            shutil.rmtree(cur)

    def apply(self, files: Sequence[FilePatch], *extra: str) -> proc.Result:
        """Apply sections for real (later patches build on them); their paths are
        remembered so that close() deletes what they create."""
        for fp in files:
            self._paths.update(p for p in (fp.old_path, fp.new_path) if p)
        return self.run_patch(b"".join(fp.raw for fp in files), *extra)

    def run_git_apply(self, diff: bytes, *extra: str) -> proc.Result:
        if "--check" not in extra:
            self._changed()
        # GIT_CEILING_DIRECTORIES stops git from finding a repository above the scratch
        # folder and resolving paths against it.
        return git.git(
            ["apply", "-v", *extra, "-"],
            cwd=self.work,
            input=diff,
            env={"GIT_CEILING_DIRECTORIES": str(self.root)},
        )

    def run_patch(self, diff: bytes, *extra: str) -> proc.Result:
        if "--dry-run" not in extra:
            self._changed()
        return proc.run(
            ["patch", "-p1", "-f", "--no-backup-if-mismatch", "-r", "-", "--quoting-style=literal", *extra],
            cwd=self.work,
            input=diff,
        )

    def close(self) -> None:
        if not self._shared:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        clean = True
        for p in self._paths:
            try:
                (self.work / p).unlink()
            except FileNotFoundError:
                pass
            except OSError:
                clean = False
        if not clean:  # something odd is left: start the next series from an empty folder
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir(exist_ok=True)
        _ROOTS.give_back()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# one patch


@dataclass
class _HunkFacts:
    hunk: Hunk
    fp: FilePatch
    path: str  # where the file is in the scratch (the new name of an already-done rename)
    before_at: int | None  # 0-based place of the exact pre-image, if any
    after_at: int | None  # 0-based place of the exact post-image, if any


@dataclass
class _Grade:
    hunks: list[HunkResult]
    verdict: str
    method: str | None
    evidence: str


def _locate(scratch: Scratch, fp: FilePatch) -> str | None:
    """Where the file a section changes is in the scratch: its old path, or the new path
    of a rename that is already done. None when neither exists."""
    if fp.old_path and scratch.ensure(fp.old_path):
        return fp.old_path
    if fp.rename and fp.new_path and scratch.ensure(fp.new_path):
        return fp.new_path
    return None


def _grade_patch(scratch: Scratch, files: list[FilePatch]) -> _Grade:
    """Hunk results and a verdict for one patch on the scratch state."""
    results: list[HunkResult] = []
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
        names = ", ".join(sorted({fp.path for fp in missing}))
        hunks = [
            HunkResult(fp.path, HunkStatus.MISSING, h.index, reason="file not in tree")
            for fp in missing
            for h in fp.hunks
        ]
        return _Grade(
            hunks, Verdict.NOT_APPLICABLE, None, f"none of the files it changes exist in the tree: {names}"
        )

    facts: list[_HunkFacts] = []
    for fp, where in present_files:
        lines, data = scratch.lines(where), scratch.data(where)
        for h in fp.hunks:
            facts.append(
                _HunkFacts(
                    h,
                    fp,
                    where,
                    find_block(lines, h.before, h.old_start - 1, data),
                    find_block(lines, h.after, h.new_start - 1, data),
                )
            )
    # a rename already done is checked under its new name: hand the tools a plain diff
    checkable = [(fp, where) for fp, where in present_files if not fp.binary]
    rev_raw = b"".join(_section_for(fp, where) for fp, where in checkable) + b"".join(fp.raw for fp in new_present)
    fwd_raw = b"".join(_section_for(fp, where) for fp, where in checkable) + b"".join(
        fp.raw for fp in new_files if fp not in new_present
    )
    tool_files = [_renamed_view(fp, where) for fp, where in checkable]

    # reverse: only worth a tool call when some post-image is there
    rev: dict[int, ToolHunk] = {}
    whole_rev_ok = False
    if rev_raw and (any(f.after_at is not None for f in facts) or new_present):
        if all(f.after_at is not None for f in facts) and not missing:
            r = scratch.run_git_apply(rev_raw, "-R", "--check")
            if r.ok:
                whole_rev_ok = True
                rev = parse_git_apply(r.err(), tool_files, reverse=True)
        if not whole_rev_ok and facts:
            r = scratch.run_patch(rev_raw, "-R", "--dry-run", "-F0")
            rev = parse_gnu_patch(r.out(), tool_files, reverse=True)

    fwd: dict[int, ToolHunk] = {}
    whole_fwd_ok = False
    if fwd_raw:
        if all(f.before_at is not None for f in facts) and not missing:
            r = scratch.run_git_apply(fwd_raw, "--check")
            if r.ok:
                whole_fwd_ok = True
                fwd = parse_git_apply(r.err(), tool_files, reverse=False)
        if not whole_fwd_ok and facts:
            r = scratch.run_patch(fwd_raw, "--dry-run", f"-F{MAX_FUZZ}")
            fwd = parse_gnu_patch(r.out(), tool_files, reverse=False)

    modified: list[int] = []
    for f in facts:
        results.append(
            _judge_hunk(f, scratch.lines(f.path), rev.get(f.hunk.index), fwd.get(f.hunk.index), modified)
        )
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
    verdict, method, evidence = _patch_verdict(results, whole_rev_ok, whole_fwd_ok, modified)
    if verdict == Verdict.CONFLICTING:
        absent = _buggy_code_absent(scratch, facts, results)
        if absent:
            return _Grade(results, Verdict.NOT_APPLICABLE, None, absent)
    return _Grade(results, verdict, method, evidence)


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


def _judge_hunk(
    f: _HunkFacts, lines: list[bytes], rv: ToolHunk | None, fw: ToolHunk | None, modified: list[int]
) -> HunkResult:
    h, path = f.hunk, f.path
    rev_ok = bool(rv and rv.ok)
    if rev_ok and fw is not None and fw.ok and fw.fuzz == 0:
        # both directions place it (repeated code, a pure addition): the image closer to
        # where the patch says decides
        b_dist = abs((f.before_at if f.before_at is not None else 10**9) - (h.old_start - 1))
        a_dist = abs((f.after_at if f.after_at is not None else 10**9) - (h.new_start - 1))
        rev_ok = a_dist <= b_dist
    if rev_ok and rv is not None:
        return HunkResult(
            path,
            HunkStatus.PRESENT,
            h.index,
            offset=rv.offset,
            line=rv.line,
            reason=None
            if rv.offset == 0
            else f"already there, {abs(rv.offset)} lines {'later' if rv.offset > 0 else 'earlier'}",
        )
    if fw is not None and fw.ok:
        near = (fw.line or h.old_start) - 1
        if fw.fuzz and (_fix_is_there(lines, h, near, 0.99) or _fix_is_there(lines, h, h.new_start - 1, 0.8)):
            # it only lands because fuzz let it sit next to its own lines, or somewhere
            # else while the fix is already where the patch says
            modified.append(h.index)
            return HunkResult(
                path,
                HunkStatus.PRESENT,
                h.index,
                offset=fw.offset,
                fuzz=fw.fuzz,
                line=fw.line,
                reason=f"its added lines are already at line {fw.line}; applying with "
                f"fuzz {fw.fuzz} would duplicate them",
            )
        st = HunkStatus.FUZZ if fw.fuzz else (HunkStatus.OFFSET if fw.offset else HunkStatus.CLEAN)
        return HunkResult(path, st, h.index, offset=fw.offset, fuzz=fw.fuzz, line=fw.line)
    # neither direction: a modified backport, or a conflict
    near = h.old_start - 1
    if _fix_is_there(lines, h, near, 0.8):
        modified.append(h.index)
        line, _, diff_txt = near_match(lines, _post_as_pre(h), h.new_start - 1)
        return HunkResult(
            path, HunkStatus.PRESENT, h.index, line=line, reason="present with differences", near=diff_txt or None
        )
    line, ratio, diff_txt = near_match(lines, h, near)
    if line is None:
        reason = "the code it changes was not found near the expected place"
    else:
        reason = f"context differs at line {line} (best match {ratio:.0%} similar)"
    return HunkResult(
        path, HunkStatus.FAILED, h.index, line=line or h.old_start, reason=reason, near=diff_txt or None
    )


def _fix_is_there(lines: Sequence[bytes], h: Hunk, near: int, share: float) -> bool:
    """Around ``near``: at least ``share`` of the hunk's added lines, and (almost) none of
    the lines it removes."""
    return (
        bool(_significant(h.added))
        and added_lines_nearby(lines, h, near) >= share
        and removed_lines_nearby(lines, h, near) <= 0.2
    )


def _buggy_code_absent(scratch: Scratch, facts: Sequence[_HunkFacts], results: Sequence[HunkResult]) -> str | None:
    """Without history to ask: when no hunk lands and none of the lines the fix removes
    exist anywhere in their files, the buggy code is not in this tree."""
    if any(r.status not in (HunkStatus.FAILED, HunkStatus.MISSING) for r in results) or not facts:
        return None
    for f in facts:
        removed = _removed_only(f.hunk)
        if not removed:
            return None
        everywhere = {_norm(ln) for ln in scratch.lines(f.path)}
        if any(r in everywhere for r in removed):
            return None
    files = ", ".join(sorted({f.path for f in facts}))
    return f"the lines it fixes are nowhere in {files} (rule: buggy code absent)"


def _post_as_pre(h: Hunk) -> Hunk:
    return Hunk(h.index, h.new_start, h.new_len, h.old_start, h.old_len, h.after, h.before, h.added, h.removed)


def _hunk_names(rs: Sequence[HunkResult]) -> str:
    return ", ".join(f"#{r.index} ({r.file})" if r.index else r.file for r in rs)


def _patch_verdict(
    hunks: Sequence[HunkResult], whole_rev_ok: bool, whole_fwd_ok: bool, modified: Sequence[int]
) -> tuple[str, str | None, str]:
    present = [h for h in hunks if h.status == HunkStatus.PRESENT]
    absent = [h for h in hunks if h.status != HunkStatus.PRESENT]
    if hunks and not absent:
        if modified:
            idx = ", ".join(f"#{i}" for i in modified)
            return Verdict.PRESENT, "modified", f"present with differences in hunk {idx}"
        if whole_rev_ok and all(h.offset == 0 for h in present):
            return Verdict.PRESENT, "exact", "reverse-applies as posted (git apply -R)"
        return Verdict.PRESENT, "offset", "reverse-applies at other lines"
    if present:
        return (Verdict.PARTIAL, None, f"hunks present: {_hunk_names(present)}; missing: {_hunk_names(absent)}")
    failed = [h for h in hunks if h.status in (HunkStatus.FAILED, HunkStatus.MISSING)]
    if failed:
        why = "; ".join(f"hunk {_hunk_names([h])}: {h.reason}" for h in failed[:5])
        return Verdict.CONFLICTING, None, f"{len(failed)} of {len(hunks)} hunks cannot be placed: {why}"
    method = weakest_method([h.status for h in hunks]) or "clean"
    if method == "clean" and not whole_fwd_ok:
        # GNU patch placed every hunk where the patch says, but git apply refused it as
        # posted (line endings or whitespace differ): not an exact apply
        return (
            Verdict.BACKPORTABLE,
            "fuzz",
            "GNU patch places every hunk at its line, but git apply "
            "refuses the patch as posted (line endings or whitespace differ)",
        )
    words = {
        "clean": "applies cleanly (git apply)",
        "offset": "applies at other lines",
        "fuzz": f"applies with fuzz (max {max(h.fuzz for h in hunks)})",
    }
    return Verdict.BACKPORTABLE, method, words[method]


def _try_3way(scratch: Scratch, files: Sequence[FilePatch], diff: bytes, object_dirs: Sequence[Path]) -> bool:
    """git apply --3way in a throwaway repository whose object store borrows the given
    ones: it succeeds only when the pre-image blobs named by the patch's index lines are
    there and the merge is clean. (--check alone does not see merge conflicts.)"""
    if not object_dirs or not any(b"\nindex " in fp.raw for fp in files):
        return False
    repo = Path(tempfile.mkdtemp(prefix="3way-", dir=scratch.root))
    env = {"GIT_CEILING_DIRECTORIES": str(scratch.root)}
    try:
        git.git(["init", "-q", str(repo)], env=env, check=True)
        (repo / ".git/objects/info/alternates").write_text("".join(f"{d}\n" for d in object_dirs))
        paths = sorted({fp.old_path for fp in files if fp.old_path and (scratch.work / fp.old_path).is_file()})
        for p in paths:
            dest = repo / p
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(scratch.work / p, dest)
        if paths:
            git.git(["add", "--", *paths], cwd=repo, env=env, check=True)
        r = git.git(["apply", "--3way", "-"], cwd=repo, input=diff, env=env)
        return r.ok and "with conflicts" not in r.err()
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def check_patch(
    scratch: Scratch,
    patch: PatchMail,
    *,
    fix: Fix | None = None,
    ctx: TreeContext | None = None,
    keep_going: bool = True,
    cves: Sequence[str] = (),
) -> PatchResult:
    """Grade one patch against the scratch state, then apply it there when later
    patches may build on it (``keep_going``)."""
    ctx = ctx or TreeContext()
    fix = fix or Fix(msgid=patch.msgid)
    base = PatchResult(
        msgid=patch.msgid,
        subject=patch.subject,
        upstream=patch.upstream,
        verdict=Verdict.ERROR,
        method=None,
        evidence="",
        optional=fix.optional,
        note=fix.note,
    )
    try:
        files = parse_diff(patch.diff)
    except MalformedPatch as e:
        base.error = base.evidence = f"{patch.msgid}: malformed patch: {e}"
        return base
    g = _grade_patch(scratch, files)
    if g.verdict != Verdict.PRESENT:
        _more_evidence(g, patch, fix, ctx, files, cves)
    if g.verdict == Verdict.CONFLICTING and _try_3way(scratch, files, patch.diff, ctx.object_dirs):
        for h in g.hunks:
            if h.status == HunkStatus.FAILED:
                h.status, h.reason = "3way", f"placed by a 3-way merge ({h.reason})"
        g.verdict, g.method = Verdict.BACKPORTABLE, "3way"
        g.evidence = "applies with a 3-way merge (git apply --3way): " + g.evidence
    base.hunks, base.verdict, base.method, base.evidence = g.hunks, g.verdict, g.method, g.evidence
    if keep_going and g.verdict not in (Verdict.PRESENT, Verdict.NOT_APPLICABLE):
        # later patches are tried on top of this one (what applies of it)
        applicable = [fp for fp in files if not fp.binary and (fp.old_path is None or scratch.ensure(fp.old_path))]
        if any(fp.raw for fp in applicable):
            scratch.apply(applicable, f"-F{MAX_FUZZ}", "-s")
    return base


def _more_evidence(
    g: _Grade, patch: PatchMail, fix: Fix, ctx: TreeContext, files: Sequence[FilePatch], cves: Sequence[str]
) -> None:
    """History and changelog outrank a forward apply; an absent introducing commit makes
    the fix not applicable. Content evidence (already in ``g``) is kept in the hunks."""
    ev = None
    if ctx.history is not None:
        upstream = [*fix.upstream, *([patch.upstream] if patch.upstream else [])]
        ev = ctx.history.find_fix(
            upstream=list(dict.fromkeys(upstream)),
            subject=patch.subject,
            diff=patch.diff,
            paths=sorted({fp.path for fp in files}),
        )
    if ev is None and ctx.changelog:
        from patchcheck.evidence.history import changelog_match

        ev = changelog_match(ctx.changelog, subject=patch.subject, cves=list(dict.fromkeys([*patch.cves, *cves])))
    if ev is not None:
        g.verdict, g.method = Verdict.PRESENT, ev.method
        g.evidence = f"{ev.detail} (content: {g.evidence})"
        return
    if (
        ctx.history is not None
        and fix.introduced_by
        and g.verdict != Verdict.NOT_APPLICABLE
        and not any(ctx.history.has_commit(s) for s in fix.introduced_by)
    ):
        g.verdict, g.method = Verdict.NOT_APPLICABLE, None
        g.evidence = (
            f"the commit that introduced the bug ({', '.join(fix.introduced_by)}) is "
            f"not in the tree's history (rule: introduced_by absent)"
        )


def check_series(
    tree: TreeView, series: Series, fix: Fix, ctx: TreeContext | None = None, cves: Sequence[str] = ()
) -> list[PatchResult]:
    """Every selected patch of one fix, in order, each on top of the previous ones."""
    with Scratch(tree) as scratch:
        out = []
        n = len(series.patches)
        for i, p in enumerate(series.patches):
            r = check_patch(scratch, p, fix=fix, ctx=ctx, keep_going=i < n - 1, cves=cves)
            if series.note:  # how the fetch stage chose the patches, when the bug file did not say
                r.evidence = f"{r.evidence}; {series.note}" if r.evidence else series.note
            out.append(r)
        return out


def touched_paths(series: Series) -> set[str]:
    """Every tree path a series may read (for TreeView.prepare)."""
    out: set[str] = set()
    for p in series.patches:
        try:
            files = parse_diff(p.diff)
        except MalformedPatch:
            continue
        for fp in files:
            out.update(x for x in (fp.old_path, fp.new_path) if x)
    return out
