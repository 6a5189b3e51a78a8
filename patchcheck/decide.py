"""The one place where evidence becomes a patch verdict, with its reasons.

The engine gathers facts (what git apply and GNU patch said, where a hunk's images are in
the file, which of its lines are found around a place); evidence/ gathers what history and
changelogs say. The rules that turn those into hunk statuses and a patch verdict are here,
and only here. Pure: no I/O, no subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from patchcheck.model import Evidence, HunkResult, HunkStatus, Method, Verdict
from patchcheck.verdict import weakest_method

# A fuzzed landing is the fix itself when nearly all its added lines are already around
# it; elsewhere (the patch's own post-image place, a hunk no tool placed) most will do.
_SHARE_AT_LANDING = 0.99
_SHARE_ELSEWHERE = 0.8
_MAX_REMOVED_LEFT = 0.2  # at most this share of the lines the fix removes may remain
_SHARE_TRACE = 0.5  # a trace of the fix, which history naming it may corroborate
_NEAR_RATIO = 0.6  # a near match of the post-image this similar is the fix's place
_FAILED_NAMED = 5  # failed hunks named in a conflicting patch's evidence
# a hunk whose @@ header names no function may land this far from where the patch says
LANDING_WINDOW = 400


# ---- facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a tool (git apply or GNU patch) placed a hunk, or that it could not."""

    ok: bool
    line: int | None = None
    offset: int = 0
    fuzz: int = 0


@dataclass(frozen=True)
class Shares:
    """Around one place in the file: the share of the hunk's significant added lines found
    there, and the share of the significant lines it removes (and does not re-add) still
    there. ``adds`` / ``removes``: the hunk adds / removes anything significant at all."""

    adds: bool
    added: float
    removed: float
    removes: bool = False


@dataclass(frozen=True)
class Near:
    """The best near match of a hunk image: 1-based line (None: nothing close), how similar,
    and a short diff expected vs found."""

    line: int | None
    ratio: float
    diff: str


@dataclass(frozen=True)
class HunkFacts:
    """What the engine found out about one hunk."""

    index: int  # 1-based within the patch
    path: str  # where the file is in the scratch
    old_start: int
    new_start: int
    before_at: int | None  # 0-based place of the exact pre-image closest to old_start
    after_at: int | None  # 0-based place of the exact post-image closest to new_start
    rev: Placement | None  # the reverse check
    fwd: Placement | None  # the forward check
    # gathered only where judge_hunk reads them. For a hunk no check placed: the shares
    # around the patch's pre-image place and around the post-image's best near match, and
    # the near matches (None: the search was skipped, too many hunks of the patch failed).
    # For a fuzzed forward landing: the shares around the landing and around the patch's
    # post-image place.
    at_old: Shares | None = None
    at_post: Shares | None = None
    near_pre: Near | None = None
    near_post: Near | None = None
    at_landing: Shares | None = None
    at_new: Shares | None = None
    # the function the hunk's @@ header names (None: it names none), and whether the
    # reverse / forward landing is in it (None: not asked: a landing at the patch's line
    # without fuzz, unless both directions place the hunk)
    func: str | None = None
    rev_in_func: bool | None = None
    fwd_in_func: bool | None = None
    post_in_func: bool | None = None  # the post-image's best near match is in it
    old_in_func: bool | None = None  # the patch's own place (its @@ -N line) is in it
    # a hunk of a section that deletes its file: the first line (1-based) where the file
    # differs from what the patch deletes, None when it is exactly that
    deletion_differs: int | None = None


@dataclass
class Decision:
    """A patch's hunk results and verdict."""

    hunks: list[HunkResult]
    verdict: Verdict
    method: Method | None
    evidence: str
    modified: list[HunkResult] = field(default_factory=list)  # hunks present only in another form
    # results where the content shows the fix's lines are not there (no trace of them)
    lacking: list[HunkResult] = field(default_factory=list)


# ---- one hunk ---------------------------------------------------------------------------


def _fix_is_there(s: Shares | None, share: float) -> bool:
    """At least ``share`` of the added lines, and (almost) none of the removed ones; for a
    hunk that only removes lines: none of them left."""
    if s is None:
        return False
    if not s.adds:
        return s.removes and s.removed == 0
    return s.added >= share and s.removed <= _MAX_REMOVED_LEFT


def _moved(offset: int) -> str | None:
    if offset == 0:
        return None
    n = abs(offset)
    return f"already there, {n} line{'' if n == 1 else 's'} {'later' if offset > 0 else 'earlier'}"


@dataclass(frozen=True)
class Judged:
    """One hunk's result; ``modified``: present only in another form; ``traced``: the tree
    shows the fix here at least in part (its lines partly there, the lines it removes
    gone), so history naming the fix may corroborate it."""

    result: HunkResult
    modified: bool = False
    traced: bool = False


def _traced(s: Shares | None) -> bool:
    return s is not None and (not s.adds or s.added >= _SHARE_TRACE) and s.removed <= _MAX_REMOVED_LEFT


def needs_place_check(p: Placement | None) -> bool:
    """A landing away from the patch's line (reverse) or with fuzz (forward) must be shown
    to be in the hunk's place before it counts."""
    return p is not None and p.ok and (p.fuzz > 0 or p.offset != 0)


def in_place(func: str | None, in_func: bool | None, line: int | None, old_start: int) -> bool:
    """A landing is in the hunk's place: inside the function its @@ header names, or, when
    the header names none, within LANDING_WINDOW lines of where the patch says."""
    if func is not None:
        return in_func is not False
    return line is None or abs(line - old_start) <= LANDING_WINDOW


def _elsewhere(f: HunkFacts, line: int | None) -> str:
    if f.func is not None:
        return f"line {line} is not in {f.func}(), the function its @@ header names"
    return f"line {line} is more than {LANDING_WINDOW} lines from line {f.old_start}"


def judge_hunk(f: HunkFacts) -> Judged:
    rv, fw = f.rev, f.fwd
    rev_ok = rv is not None and rv.ok
    notes: list[str] = []  # why a landing did not count, for a failed hunk's reason
    if (
        rv is not None
        and rev_ok
        and needs_place_check(rv)
        and not in_place(f.func, f.rev_in_func, rv.line, f.old_start)
    ):
        rev_ok = False  # its lines are there, but in another function: not the fix
        notes.append(f"its resulting lines are at line {rv.line}, but {_elsewhere(f, rv.line)}")
    if rev_ok and fw is not None and fw.ok and fw.fuzz == 0:
        # both directions place it (repeated code, a pure addition): the one in the
        # function the @@ header names, else the image closer to where the patch says
        if f.rev_in_func is not None and f.fwd_in_func is not None and f.rev_in_func != f.fwd_in_func:
            rev_ok = f.rev_in_func
        else:
            b_dist = abs((f.before_at if f.before_at is not None else 10**9) - (f.old_start - 1))
            a_dist = abs((f.after_at if f.after_at is not None else 10**9) - (f.new_start - 1))
            rev_ok = a_dist <= b_dist
    if rev_ok and rv is not None:
        res = HunkResult(
            f.path, HunkStatus.PRESENT, f.index, offset=rv.offset, line=rv.line, reason=_moved(rv.offset)
        )
        return Judged(res, traced=True)
    if fw is not None and fw.ok and f.deletion_differs is not None:
        # the hunks place, but the file holds more or other lines than the patch deletes:
        # GNU patch keeps it ("Not deleting file"), git apply refuses
        why = (
            f"not deleting the file: its content differs from what the patch deletes at line {f.deletion_differs}"
        )
        res = HunkResult(f.path, HunkStatus.FAILED, f.index, line=f.deletion_differs, reason=why)
        return Judged(res)
    fwd_here = fw is not None and (not fw.fuzz or in_place(f.func, f.fwd_in_func, fw.line, f.old_start))
    if fw is not None and fw.ok and not fwd_here:
        # fuzz let it land, but not where the fix belongs
        notes.append(f"it applies only with fuzz {fw.fuzz} at line {fw.line}, and {_elsewhere(f, fw.line)}")
    elif fw is not None and fw.ok:
        res = HunkResult(f.path, HunkStatus.CLEAN, f.index, offset=fw.offset, fuzz=fw.fuzz, line=fw.line)
        if fw.fuzz and (
            _fix_is_there(f.at_landing, _SHARE_AT_LANDING) or _fix_is_there(f.at_new, _SHARE_ELSEWHERE)
        ):
            # it only lands because fuzz let it sit next to its own lines, or somewhere
            # else while the fix is already where the patch says
            res.status = HunkStatus.PRESENT
            res.reason = (
                f"its added lines are already at line {fw.line}; applying with fuzz {fw.fuzz} would duplicate them"
            )
            return Judged(res, modified=True, traced=True)
        if fw.fuzz or fw.offset:
            res.status = HunkStatus.FUZZ if fw.fuzz else HunkStatus.OFFSET
        # without fuzz the exact pre-image is there: the fix is not
        return Judged(res, traced=bool(fw.fuzz) and (_traced(f.at_landing) or _traced(f.at_new)))
    # neither direction: a modified backport, or a conflict. The fix is looked for where
    # the patch puts it and where its post-image's best near match is (the code may have
    # moved); a hunk that only removes lines is there when they are gone from the place
    # its context is found
    post = f.near_post or Near(None, 0.0, "")
    at_match = f.at_post if post.ratio >= _NEAR_RATIO and in_place(f.func, f.post_in_func, None, 0) else None
    at_place = (
        f.at_old if f.at_old is not None and f.at_old.adds and in_place(f.func, f.old_in_func, None, 0) else None
    )
    if _fix_is_there(at_place, _SHARE_ELSEWHERE) or _fix_is_there(at_match, _SHARE_ELSEWHERE):
        reason = "present with differences"
        res = HunkResult(
            f.path, HunkStatus.PRESENT, f.index, line=post.line, reason=reason, near=post.diff or None
        )
        return Judged(res, modified=True, traced=True)
    pre = f.near_pre or Near(None, 0.0, "")
    if f.near_pre is None:
        reason = "it does not apply here (no near-match search: too many hunks of this patch failed)"
    elif pre.line is None:
        reason = "the code it changes was not found near the expected place"
    else:
        reason = f"context differs at line {pre.line} (best match {pre.ratio:.0%} similar)"
    reason = "; ".join([reason, *notes])
    line = pre.line or f.old_start
    res = HunkResult(f.path, HunkStatus.FAILED, f.index, line=line, reason=reason, near=pre.diff or None)
    return Judged(res, traced=_traced(f.at_old) or (post.ratio >= _NEAR_RATIO and _traced(f.at_post)))


def empty_deletion(path: str, differs: int | None) -> HunkResult:
    """A section that deletes an empty file (no hunks): the file must be empty."""
    if differs is None:
        return HunkResult(path, HunkStatus.CLEAN, 0, reason="deletes the file")
    why = "not deleting the file: the patch deletes an empty file, this one is not empty"
    return HunkResult(path, HunkStatus.FAILED, 0, line=differs, reason=why)


def binary_result(path: str, has_data: bool, rev_ok: bool, fwd_ok: bool, why: str) -> HunkResult:
    """A binary section, checked whole by git apply each way (``why``: what git said)."""
    if not has_data:
        return HunkResult(path, HunkStatus.FAILED, 0, reason="binary diff without its data: cannot be checked")
    if rev_ok:
        return HunkResult(path, HunkStatus.PRESENT, 0, reason="binary content already as the patch makes it")
    if fwd_ok:
        return HunkResult(path, HunkStatus.CLEAN, 0, reason="binary patch applies (git apply)")
    return HunkResult(path, HunkStatus.FAILED, 0, reason=f"binary patch does not apply: {why}")


# ---- one patch, from its content ----------------------------------------------------------


def _hunk_names(rs: Sequence[HunkResult]) -> str:
    return ", ".join(f"#{r.index} ({r.file})" if r.index else r.file for r in rs)


def none_exist(hunks: list[HunkResult], names: Sequence[str]) -> Decision:
    """No file the patch changes exists (and none it creates is there yet)."""
    why = f"none of the files it changes exist in the tree: {', '.join(sorted(set(names)))}"
    return Decision(hunks, Verdict.NOT_APPLICABLE, None, why, lacking=list(hunks))


def nothing_to_delete(hunks: list[HunkResult], names: Sequence[str]) -> Decision:
    """The patch only deletes files, and none is there: deleted already, or never there
    (an empty or unrelated tree). The content cannot tell which, so it is no proof of the
    fix (history naming the fix may still show it present)."""
    why = f"the files it deletes are not in the tree (deleted already, or never there): {', '.join(sorted(names))}"
    return Decision(hunks, Verdict.NOT_APPLICABLE, None, why)


def patch_verdict(
    hunks: list[HunkResult],
    whole_rev_ok: bool,
    whole_fwd_ok: bool,
    modified: Sequence[HunkResult],
    lacking: Sequence[HunkResult] = (),
) -> Decision:
    """The content verdict from the hunk results and whether the whole patch applies as
    posted (reverse / forward). ``lacking``: the results that show the fix is not there."""
    d = Decision(hunks, Verdict.ERROR, None, "", list(modified), list(lacking))
    present = [h for h in hunks if h.status == HunkStatus.PRESENT]
    absent = [h for h in hunks if h.status != HunkStatus.PRESENT]
    if hunks and not absent:
        if modified:
            why = f"present with differences in hunk {_hunk_names(modified)}"
            return replace(d, verdict=Verdict.PRESENT, method=Method.MODIFIED, evidence=why)
        if whole_rev_ok and all(h.offset == 0 for h in present):
            why = "reverse-applies as posted (git apply -R)"
            return replace(d, verdict=Verdict.PRESENT, method=Method.EXACT, evidence=why)
        return replace(d, verdict=Verdict.PRESENT, method=Method.OFFSET, evidence="reverse-applies at other lines")
    if present:
        why = f"hunks present: {_hunk_names(present)}; missing: {_hunk_names(absent)}"
        return replace(d, verdict=Verdict.PARTIAL, evidence=why)
    failed = [h for h in hunks if h.status in (HunkStatus.FAILED, HunkStatus.MISSING)]
    if failed:
        why = "; ".join(f"hunk {_hunk_names([h])}: {h.reason}" for h in failed[:_FAILED_NAMED])
        why = f"{len(failed)} of {len(hunks)} hunks cannot be placed: {why}"
        return replace(d, verdict=Verdict.CONFLICTING, evidence=why)
    method = Method(weakest_method([h.status for h in hunks]) or Method.CLEAN)
    if method == Method.CLEAN and not whole_fwd_ok:
        # GNU patch placed every hunk where the patch says, but git apply refused it as
        # posted (line endings or whitespace differ): not an exact apply
        why = (
            "GNU patch places every hunk at its line, but git apply "
            "refuses the patch as posted (line endings or whitespace differ)"
        )
        return replace(d, verdict=Verdict.BACKPORTABLE, method=Method.FUZZ, evidence=why)
    words = {
        Method.CLEAN: "applies cleanly (git apply)",
        Method.OFFSET: "applies at other lines",
        Method.FUZZ: f"applies with fuzz (max {max(h.fuzz for h in hunks)})",
    }
    return replace(d, verdict=Verdict.BACKPORTABLE, method=method, evidence=words[method])


# ---- a 3-way merge, history and changelogs --------------------------------------------------


def wants_3way(d: Decision) -> bool:
    return d.verdict == Verdict.CONFLICTING


def placed_by_3way(d: Decision) -> Decision:
    """A clean ``git apply --3way`` places the hunks nothing else could."""
    for h in d.hunks:
        if h.status == HunkStatus.FAILED:
            h.status, h.reason = HunkStatus.THREEWAY, f"placed by a 3-way merge ({h.reason})"
    why = "applies with a 3-way merge (git apply --3way): " + d.evidence
    return replace(d, verdict=Verdict.BACKPORTABLE, method=Method.THREEWAY, evidence=why)


def wants_evidence(d: Decision) -> bool:
    """History and changelogs are asked only when the content does not show the fix."""
    return d.verdict != Verdict.PRESENT


def with_evidence(d: Decision, found: Evidence | None, introduced_absent: Sequence[str] = ()) -> Decision:
    """Content wins. History or a changelog naming the fix (``found``) makes it present only
    where the content bears it out: every part of the fix is there, if only in another
    form (a trace); where the content shows a part missing, the verdict stays and the
    evidence says so. An introducing commit absent from the tree's history
    (``introduced_absent`` names those asked for) makes the fix not applicable."""
    if found is not None:
        if not d.lacking:
            why = f"{found.detail}; its lines are in the tree, partly in another form (content: {d.evidence})"
            return replace(d, verdict=Verdict.PRESENT, method=found.method, evidence=why)
        names = f"history names commit {found.commit[:12]} ({found.detail})" if found.commit else found.detail
        why = f"{names}, but its lines are not in the tree (reverted? dropped?); {d.evidence}"
        return replace(d, evidence=why)
    if introduced_absent and d.verdict != Verdict.NOT_APPLICABLE:
        why = (
            f"the commit that introduced the bug ({', '.join(introduced_absent)}) is "
            f"not in the tree's history (rule: introduced_by absent)"
        )
        return replace(d, verdict=Verdict.NOT_APPLICABLE, method=None, evidence=why)
    return d


# ---- the bug's origin, by content -----------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """The change that brought the bug, checked by content against a tree: ``absent`` (its
    lines are not there, its pre-image is: proof), ``present``, or ``unknown`` (it could not
    be checked, or it neither applies nor is there: no proof either way). ``detail``: in words."""

    state: str  # "absent" | "present" | "unknown"
    detail: str


def wants_origin(d: Decision) -> bool:
    """Only a fix the content shows missing may be one the tree does not need."""
    return d.verdict in (Verdict.BACKPORTABLE, Verdict.CONFLICTING, Verdict.PARTIAL)


def with_origin(d: Decision, origin: Origin | None) -> Decision:
    """Where no history answers: the bug's origin absent by content makes the fix not
    applicable (a fix with some of its hunks present keeps its verdict: the content has the
    last word); otherwise the evidence says what the origin check found."""
    if origin is None or not wants_origin(d):
        return d
    if origin.state == "absent" and d.verdict != Verdict.PARTIAL:
        why = f"{origin.detail} (rule: bug origin absent); content: {d.evidence}"
        return replace(d, verdict=Verdict.NOT_APPLICABLE, method=None, evidence=why)
    return replace(d, evidence=f"{d.evidence}; {origin.detail}")
