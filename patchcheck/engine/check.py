"""Test-apply engine: a series' patches against a scratch copy of only the files they touch.

For each patch, in series order, every hunk gets a status from real tools (git apply for the
whole-patch verdict, GNU patch for per-hunk offset/fuzz), both directions; history and
changelog evidence is gathered when the content does not show the fix; decide.py rules.
Nothing is ever written into the user's tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchcheck import decide
from patchcheck.engine.grade import grade_patch
from patchcheck.engine.scratch import Scratch
from patchcheck.engine.threeway import merges_cleanly
from patchcheck.engine.tools import MAX_FUZZ, NotAPatch, TooCostly
from patchcheck.errors import EXIT_NO_SERIES, SeriesError
from patchcheck.evidence.changelog import changelog_match, queue_match
from patchcheck.model import Evidence, Fix, PatchMail, PatchResult, SearchLimits, Series, Verdict
from patchcheck.sys.paths import UnsafePath, clean_relpath
from patchcheck.text.diff import FilePatch, MalformedPatch, normalise_eol, parse_diff
from patchcheck.trees.base import TreeView

if TYPE_CHECKING:  # a plain run needs none of them: importing them costs ~25 ms a start
    from patchcheck.evidence.history import History
    from patchcheck.fetch.upstream import UpstreamRepo

MAX_HUNKS = 20_000  # per patch, unless --max-hunks says otherwise


@dataclass
class TreeContext:
    """What a tree offers beyond its files, gathered once per tree and shared by all bugs."""

    history: History | None = None  # git history index, for git trees
    changelog: str | None = None  # distro changelog text, for package trees
    queue_headers: list[tuple[str, str]] = field(default_factory=list)  # (patch, header) a package applies
    object_dirs: tuple[Path, ...] = field(default_factory=tuple)  # git objects, for 3way
    # the bug's origin checked by content, for trees without history (evidence/origin.py)
    origin: Callable[[Fix, PatchMail], decide.Origin | None] | None = None
    upstream: UpstreamRepo | None = None  # a local upstream clone (--upstream-repo)
    prereqs: SearchLimits | None = None  # search a conflict's prerequisites in it, so far
    with_prereqs: bool = False  # and check the fix on top of the absent ones


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
        _check_paths(files, patch.msgid)
    except MalformedPatch as e:
        base.error = base.evidence = f"{patch.msgid}: malformed patch: {e}"
        base.error_code = EXIT_NO_SERIES
        return base
    except UnsafePath as e:
        # never a guess and never a write: the scratch joins no such path
        base.error = base.evidence = str(e)
        base.error_code = EXIT_NO_SERIES
        return base
    try:
        d = grade_patch(scratch, files)
    except (TooCostly, NotAPatch) as e:
        base.error = base.evidence = f"{patch.msgid}: {e}"
        base.error_code = e.exit_code
        return base
    if decide.wants_evidence(d):
        found, introduced_absent = _more_evidence(patch, fix, ctx, files, cves)
        d = decide.with_evidence(d, found, introduced_absent)
    if ctx.origin is not None and ctx.history is None and decide.wants_origin(d):
        d = decide.with_origin(d, ctx.origin(fix, patch))
    # a CRLF mail's diff is read as LF everywhere (the parser does so too)
    if decide.wants_3way(d) and merges_cleanly(scratch, files, normalise_eol(patch.diff), ctx.object_dirs):
        d = decide.placed_by_3way(d)
    base.hunks, base.verdict, base.method, base.evidence = d.hunks, d.verdict, d.method, d.evidence
    if keep_going and d.verdict not in (Verdict.PRESENT, Verdict.NOT_APPLICABLE):
        # later patches are tried on top of this one (what applies of it)
        applicable = [fp for fp in files if fp.old_path is None or scratch.ensure(fp.old_path)]
        if any(fp.raw for fp in applicable):
            scratch.apply(applicable, fuzz=MAX_FUZZ)
    return base


def _check_paths(files: Sequence[FilePatch], msgid: str) -> None:
    """UnsafePath naming the mail when a section names a path outside the scratch."""
    for fp in files:
        for p in (fp.old_path, fp.new_path):
            if p is not None:
                clean_relpath(p, msgid)


def _more_evidence(
    patch: PatchMail, fix: Fix, ctx: TreeContext, files: Sequence[FilePatch], cves: Sequence[str]
) -> tuple[Evidence | None, tuple[str, ...]]:
    """What history (else a changelog, else the headers of a package's patches) says about
    the fix, and the introducing commits asked for that the history lacks (empty unless all
    of them are absent)."""
    found = None
    upstream = list(dict.fromkeys([*fix.upstream, *([patch.upstream] if patch.upstream else [])]))
    if ctx.history is not None:
        found = ctx.history.find_fix(
            upstream=upstream,
            subject=patch.subject,
            diff=normalise_eol(patch.diff),
            paths=sorted({fp.path for fp in files}),
            cves=list(dict.fromkeys([*patch.cves, *cves])),
        )
    if found is None and ctx.changelog:
        found = changelog_match(
            ctx.changelog, subject=patch.subject, cves=list(dict.fromkeys([*patch.cves, *cves]))
        )
    if found is None and ctx.queue_headers:
        found = queue_match(ctx.queue_headers, upstream=upstream, subject=patch.subject, cves=[*patch.cves, *cves])
    absent: tuple[str, ...] = ()
    if (
        found is None
        and ctx.history is not None
        and fix.introduced_by
        and not any(ctx.history.has_commit(s) for s in fix.introduced_by)
    ):
        absent = fix.introduced_by
    return found, absent


def hunk_count(patch: PatchMail) -> int:
    """Hunk headers in a patch's diff, counted without parsing it."""
    d = patch.diff
    return d.count(b"\n@@ ") + (1 if d.startswith(b"@@ ") else 0)


def over_limit(series: Series, max_hunks: int) -> SeriesError | None:
    """The error for a series with a patch of more than ``max_hunks`` hunks (a hostile or
    mistaken mail: placing them all would take very long), else None."""
    for p in series.patches:
        n = hunk_count(p)
        if n > max_hunks:
            return SeriesError(
                f"{p.msgid}: {n} hunks, more than the limit of {max_hunks} per patch; "
                f"raise it with --max-hunks {n} if this patch is genuine"
            )
    return None


def check_series(
    tree: TreeView,
    series: Series,
    fix: Fix,
    ctx: TreeContext | None = None,
    cves: Sequence[str] = (),
    max_hunks: int = MAX_HUNKS,
) -> list[PatchResult]:
    """Every selected patch of one fix, in order, each on top of the previous ones.
    SeriesError when a patch has more than ``max_hunks`` hunks."""
    too_many = over_limit(series, max_hunks)
    if too_many is not None:
        raise too_many
    with Scratch(tree) as scratch:
        out = []
        n = len(series.patches)
        for i, p in enumerate(series.patches):
            r = check_patch(scratch, p, fix=fix, ctx=ctx, keep_going=i < n - 1, cves=cves)
            if series.note:  # how the fetch stage chose the patches, when the bug file did not say
                r.evidence = f"{r.evidence}; {series.note}" if r.evidence else series.note
            out.append(r)
        return out


def touched_paths(series: Series, max_hunks: int = MAX_HUNKS) -> set[str]:
    """Every tree path a series may read (for TreeView.prepare); the paths of a patch that
    is malformed, names an unsafe path or has too many hunks are left out (checking it is
    an error)."""
    out: set[str] = set()
    if over_limit(series, max_hunks) is not None:
        return out
    for p in series.patches:
        try:
            files = parse_diff(p.diff)
            _check_paths(files, p.msgid)
        except (MalformedPatch, UnsafePath):
            continue
        for fp in files:
            out.update(x for x in (fp.old_path, fp.new_path) if x)
    return out
