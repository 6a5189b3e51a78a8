"""The pipeline: bugs -> series -> tree views -> hunk results -> verdicts.

Each series is fetched once and each tree opened (and prepared) once per run; the bug x tree
cells then run in worker processes (forked: they share the trees, series and contexts as they
are, read-only), in chunks of cells, because most cells are decided in-process (Python: one
core per process); where fork is not offered, in threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from patchcheck.engine import scratch
from patchcheck.engine.check import MAX_HUNKS, TreeContext, check_series, touched_paths
from patchcheck.errors import PatchcheckError, SeriesError, TreeError
from patchcheck.model import Bug, BugResult, Fix, PatchResult, SearchLimits, Series, Verdict
from patchcheck.sys import progress, workers
from patchcheck.trees.base import TreeView
from patchcheck.verdict import bug_verdict


@dataclass
class Fetched:
    """Each fix's series, or the error that kept it from us."""

    by_fix: dict[Fix, Series | SeriesError]


class SeriesSource(Protocol):
    """What the fetch stage offers (lore.Fetcher)."""

    def get(self, fix: Fix) -> Series: ...

    def get_many(self, fixes: Sequence[Fix], jobs: int = 4) -> dict[str, Series | SeriesError]: ...


def fetch_all(bugs: Sequence[Bug], source: SeriesSource, key: Callable[[Fix], str], jobs: int) -> Fetched:
    """Each thread fetched once (in parallel), then each fix's own selection from it."""
    fixes = list(dict.fromkeys(f for b in bugs for f in b.fixes))
    threads = source.get_many(fixes, jobs=jobs)
    firsts: dict[str, Fix] = {}
    for f in fixes:
        firsts.setdefault(key(f), f)
    out: dict[Fix, Series | SeriesError] = {}
    for f in fixes:
        t = threads[key(f)]
        if isinstance(t, SeriesError) or firsts[key(f)] == f:
            # get_many's answer is this very fix's selection: selecting again (b4 parsing,
            # a git patch-id per patch) would only repeat it
            out[f] = t
            continue
        try:
            out[f] = source.get(f)  # a memory/cache hit: the thread is already here
        except SeriesError as e:
            out[f] = e
    return Fetched(out)


def _error_patch(fix: Fix, err: PatchcheckError) -> PatchResult:
    # evidence says what kind of failure; ``error`` carries the one-line detail
    what = (
        "the tree could not be read"
        if isinstance(err, TreeError)
        else "the fix series could not be obtained"
        if isinstance(err, SeriesError)
        else "it could not be decided"
    )
    return PatchResult(
        msgid=fix.label,
        subject="",
        upstream=fix.upstream[0] if fix.upstream else None,
        verdict=Verdict.ERROR,
        method=None,
        evidence=what,
        optional=fix.optional,
        note=fix.note,
        error=str(err),
        error_code=err.exit_code,
    )


def object_store(repo: Path) -> Path | None:
    """The objects folder of a git repository (work tree or bare), if it has one."""
    for cand in (repo / ".git" / "objects", repo / "objects"):
        if cand.is_dir():
            return cand.resolve()
    return None


def tree_context(
    tree: TreeView,
    cache_dir: Path | None,
    upstream_repo: Path | None = None,
    limits: SearchLimits | None = None,
    with_prereqs: bool = False,
) -> TreeContext:
    """Everything about a tree beyond its files, gathered once per run. An upstream clone
    also brings the search for a conflict's prerequisites (within ``limits``)."""
    ctx = TreeContext(changelog=tree.changelog(), queue_headers=tree.queue_headers())
    if upstream_repo is not None:
        from patchcheck.fetch.upstream import open_clone

        ctx.upstream = open_clone(upstream_repo)
        ctx.prereqs = limits or SearchLimits()
        ctx.with_prereqs = with_prereqs
    dirs: list[Path] = []
    gd, head = tree.git_dir(), tree.head()
    if gd is not None and head:
        from patchcheck.evidence.history import History

        ctx.history = History.load(gd, head, cache_dir)
        store = object_store(gd.parent) if gd.name == ".git" else object_store(gd)
        if store:
            dirs.append(store)
    else:  # no history to ask: the bug's origin is checked by content, where a source has it
        from patchcheck.evidence.origin import OriginCheck

        ctx.origin = OriginCheck(tree, ctx.upstream)  # the run's clone: its git calls once
    if upstream_repo is not None:
        store = object_store(upstream_repo)
        if store:
            dirs.append(store)
    ctx.object_dirs = tuple(dirs)
    return ctx


def check_bug(
    bug: Bug, tree: TreeView, fetched: Fetched, ctx: TreeContext | None = None, max_hunks: int = MAX_HUNKS
) -> BugResult:
    patches: list[PatchResult] = []
    for fix in bug.fixes:
        s = fetched.by_fix[fix]
        if isinstance(s, PatchcheckError):
            patches.append(_error_patch(fix, s))
            continue
        try:
            got = check_series(tree, s, fix, ctx, cves=bug.cves, max_hunks=max_hunks)
            for p, r in zip(s.patches, got, strict=True):
                if p.origin:  # the patch could have come from the mail or the upstream clone
                    r.evidence = f"{r.evidence} ({p.origin})"
            if ctx is not None and ctx.prereqs is not None:
                from patchcheck.engine.backport import annotate

                annotate(tree, ctx, s, fix, got)
            patches.extend(got)
        except PatchcheckError as e:
            patches.append(_error_patch(fix, e))
    verdict, method, error = bug_verdict(patches)
    return BugResult(bug=bug, tree=tree.info, verdict=verdict, method=method, error=error, patches=patches)


def fetched_paths(fetched: Fetched, max_hunks: int) -> list[str]:
    """Every tree path the fetched series may read, sorted (for TreeView.prepare)."""
    paths: set[str] = set()
    for s in fetched.by_fix.values():
        if isinstance(s, Series):
            paths |= touched_paths(s, max_hunks)
    return sorted(paths)


def run_matrix(
    bugs: Sequence[Bug],
    trees: Sequence[TreeView],
    fetched: Fetched,
    jobs: int,
    contexts: Sequence[TreeContext] | None = None,
    max_hunks: int | None = None,
) -> list[BugResult]:
    """Every bug on every tree; results in (tree, bug) order whatever the finishing order.
    ``max_hunks``: the most hunks a patch may have (None: the engine's default)."""
    limit = MAX_HUNKS if max_hunks is None else max_hunks
    paths = fetched_paths(fetched, limit)
    for t in trees:
        t.prepare(paths)
    ctxs = list(contexts) if contexts is not None else [TreeContext() for _ in trees]
    cells = [(t, c, b) for t, c in zip(trees, ctxs, strict=True) for b in bugs]

    shown = progress.task("checking", len(cells), "bug x tree cells")

    def one(cell: Cell) -> BugResult:
        r = check_bug(cell[2], cell[0], fetched, cell[1], limit)
        shown.advance()
        return r

    with shown:
        if jobs <= 1 or len(cells) <= 1:
            return [one(c) for c in cells]
        if len(cells) >= MIN_CELLS_FOR_PROCESSES and workers.can_fork():
            return _in_processes(cells, fetched, limit, jobs, shown.advance)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, cells))


Cell = tuple[TreeView, TreeContext, Bug]
MIN_CELLS_FOR_PROCESSES = 16  # fewer: starting the workers costs more than they save
CHUNKS_PER_JOB = 8  # chunks per worker: small enough to even out, big enough to be cheap


def _worker_start() -> None:
    scratch.forget_roots()  # the parent's scratch folders are the parent's to use and remove


# what a worker sends back of a cell's result: its bug and tree, which this process has,
# do not cross the pipe
Outcome = tuple[str, str | None, str | None, list[PatchResult]]


def _outcome(r: BugResult) -> Outcome:
    return r.verdict, r.method, r.error, r.patches


def _result(bug: Bug, tree: TreeView, o: Outcome) -> BugResult:
    return BugResult(bug, tree.info, *o)


def _cells_chunk(part: Sequence[Cell]) -> list[Outcome]:
    fetched, limit = workers.shared()
    return [_outcome(check_bug(b, t, fetched, c, limit)) for t, c, b in part]


def _in_processes(
    cells: Sequence[Cell], fetched: Fetched, limit: int, jobs: int, advance: Callable[[int], None]
) -> list[BugResult]:
    """The cells in ``jobs`` forked workers, chunk by chunk; results in cell order."""
    parts = workers.chunks(cells, jobs, CHUNKS_PER_JOB)
    out = workers.fork_map(
        _cells_chunk,
        parts,
        (fetched, limit),
        jobs,
        lambda got: advance(len(got)),
        _worker_start,
        scratch.remove_roots,
    )
    return [
        _result(b, t, o)
        for part, got in zip(parts, out, strict=True)
        for (t, _c, b), o in zip(part, got, strict=True)
    ]


# ---- fetching and checking together, chunk by chunk, in the workers ------------------------

# a cell's answer from a worker: (tree, bug, outcome, the result encoded or "")
Answer = tuple[int, int, Outcome, str]
# a chunk's answers, and the fixes whose series failed
Streamed = tuple[list[Answer], dict[Fix, SeriesError]]


@dataclass
class Checked:
    """``check_all``'s answer: the results in (tree, bug) order, the fixes whose series could
    not be obtained and, when the workers encoded them, each result's encoding."""

    results: list[BugResult]
    failed: dict[Fix, SeriesError]
    encoded: list[str] | None = None


def check_all(
    bugs: Sequence[Bug],
    trees: Sequence[TreeView],
    source: SeriesSource,
    key: Callable[[Fix], str],
    jobs: int,
    contexts: Sequence[TreeContext] | None = None,
    max_hunks: int | None = None,
    encode: Callable[[BugResult], str] | None = None,
) -> Checked:
    """Every bug on every tree, results in (tree, bug) order; with the fixes whose series
    could not be obtained.

    With worker processes, each worker gets its bugs' series and checks them on every
    tree in one go: reading series (or fetching and parsing them) then runs on every core
    too, and so does ``encode`` (a report format's per-result encoder: its work would
    otherwise wait for the last cell, on one core). Trees that want every path before the
    first read (an archive read in one pass), a run too small for workers, or no fork: the
    series first, then the cells, and nothing encoded."""
    ctxs = list(contexts) if contexts is not None else [TreeContext() for _ in trees]
    cells = len(bugs) * len(trees)
    if any(t.wants_paths for t in trees) or jobs <= 1 or cells < MIN_CELLS_FOR_PROCESSES or not workers.can_fork():
        fetched = fetch_all(bugs, source, key, jobs=jobs)
        results = run_matrix(bugs, trees, fetched, jobs=jobs, contexts=ctxs, max_hunks=max_hunks)
        return Checked(results, {f: s for f, s in fetched.by_fix.items() if isinstance(s, SeriesError)})
    limit = MAX_HUNKS if max_hunks is None else max_hunks
    groups = workers.chunks(_by_thread(bugs, key), jobs, CHUNKS_PER_JOB)
    parts = [[i for g in part for i in g] for part in groups]
    shown = progress.task("checking", cells, "bug x tree cells")
    with shown:
        work = (bugs, trees, ctxs, source, limit, encode)
        answers = workers.fork_map(
            _streamed_chunk,
            parts,
            work,
            jobs,
            lambda got: shown.advance(len(got[0])),
            _worker_start,
            scratch.remove_roots,
        )
    grid: list[list[tuple[BugResult, str] | None]] = [[None] * len(bugs) for _ in trees]
    failed: dict[Fix, SeriesError] = {}
    for got, errs in answers:
        failed |= errs
        for k, i, o, text in got:
            grid[k][i] = (_result(bugs[i], trees[k], o), text)
    done = [cell for row in grid for cell in row if cell is not None]
    return Checked([r for r, _ in done], failed, [t for _, t in done] if encode is not None else None)


def _by_thread(bugs: Sequence[Bug], key: Callable[[Fix], str]) -> list[list[int]]:
    """The bugs' indices in groups that share no thread with another group (each thread
    is then fetched by one worker only), each group in bug order, by its first bug."""
    parent = list(range(len(bugs)))  # union-find over the bugs: a thread joins its bugs

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, b in enumerate(bugs):
        for k in map(key, b.fixes):
            if k in owner:
                a, c = root(owner[k]), root(i)
                parent[max(a, c)] = min(a, c)
            else:
                owner[k] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(bugs)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _streamed_chunk(indices: list[int]) -> Streamed:
    """In a worker: its bugs' series (from the cache or the archive), their patches parsed,
    then each bug on every tree, then each result encoded when asked. One stage at a time
    over the chunk, not bug by bug: the same work costs ~10% less CPU when each stage's
    code and data stay warm in the processor's caches."""
    bugs, trees, ctxs, source, limit, encode = workers.shared()
    failed: dict[Fix, SeriesError] = {}
    by_fix: dict[Fix, Series | SeriesError] = {}
    for i in indices:
        for f in bugs[i].fixes:
            if f not in by_fix:
                try:
                    by_fix[f] = source.get(f)
                except SeriesError as e:
                    by_fix[f] = failed[f] = e
    fetched = Fetched(by_fix)
    for got in by_fix.values():
        if isinstance(got, Series):
            touched_paths(got, limit)  # each patch parsed here: the checks take it from parse_diff's cache
    cells = [
        (k, i, check_bug(bugs[i], t, fetched, c, limit))
        for i in indices
        for k, (t, c) in enumerate(zip(trees, ctxs, strict=True))
    ]
    answers = [(k, i, _outcome(r), encode(r) if encode else "") for k, i, r in cells]
    return answers, failed
