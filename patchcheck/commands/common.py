"""What the verbs share: typed options made from the command line, and the check run itself.

Each verb turns its ``argparse.Namespace`` into frozen option objects at its entry; nothing
below this layer sees the Namespace.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchcheck import __version__, config
from patchcheck.bugs.load import BugSet, load_bugs
from patchcheck.bugs.select import Selection, Shard, at_least
from patchcheck.bugs.select import select_bugs as _select
from patchcheck.errors import EXIT_FINDINGS, EXIT_NO_SERIES, EXIT_OK, BadInput, SeriesError
from patchcheck.fetch.limits import Limits
from patchcheck.model import Bug, BugResult, SearchLimits, Verdict

if TYPE_CHECKING:
    from patchcheck.fetch.fetcher import Fetcher
    from patchcheck.report.model import Report
    from patchcheck.trees.base import TreeView


@dataclass(frozen=True)
class Sources:
    """Where bugs, series and named trees come from, and how hard to work at it."""

    bugs_dirs: tuple[Path, ...]
    cache_dir: Path
    lore_url: str
    offline: bool
    timeout: float
    trees_file: Path | None
    jobs: int
    quiet: bool
    limits: Limits = field(default_factory=Limits)  # on what is read from strangers (README "Limits")
    max_hunks: int | None = None  # per patch; None: the engine's default
    max_member_bytes: int | None = None  # per archive member read; None: the trees' default
    tree_cache: Path = Path()  # extracted tree members and history indexes (never the series cache)
    fetch_args: tuple[str, ...] = ()  # the options a `patchcheck fetch` of the same bugs repeats
    upstream_repo: Path | None = None  # a local upstream clone: fixes given by upstream ids, corroboration
    arch: str | None = None  # --arch / PATCHCHECK_ARCH; None: a named tree's arch, else the host's


def tree_arch(args: argparse.Namespace) -> str | None:
    """--arch, else PATCHCHECK_ARCH, else None (open_tree's default: the host's)."""
    opt = getattr(args, "arch", None)
    raw = opt or os.environ.get("PATCHCHECK_ARCH")
    if not raw:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", raw):
        where = "--arch" if opt else "PATCHCHECK_ARCH"
        raise BadInput(f"{where}: {raw[:40]!r}: expected an architecture such as x86_64 or aarch64")
    return raw


def sources(args: argparse.Namespace) -> Sources:
    return Sources(
        bugs_dirs=config.bugs_dirs(args.bugs_dir, shipped=config.shipped_bugs(args.no_shipped_bugs)),
        cache_dir=config.cache_dir(args.cache_dir),
        lore_url=config.lore_url(args.lore_url),
        offline=args.offline,
        timeout=args.timeout,
        trees_file=config.trees_file(args.trees_file),
        jobs=args.jobs,
        quiet=args.quiet,
        limits=Limits.resolve(
            args.max_answer_bytes, args.max_thread_bytes, args.max_thread_mails, args.max_mbox_bytes
        ),
        max_hunks=getattr(args, "max_hunks", None),
        max_member_bytes=config.max_member_bytes(args.max_member_bytes),
        tree_cache=config.tree_cache(args.tree_cache),
        fetch_args=tuple(fetch_options(args)),
        upstream_repo=getattr(args, "upstream_repo", None),
        arch=tree_arch(args),
    )


def selection(args: argparse.Namespace) -> Selection:
    return Selection(
        ids=tuple(args.bug),
        every=args.all,
        subsystems=tuple(args.subsystem),
        severities=tuple(args.severity),
        cves=tuple(args.cve),
        required=args.need_selection,
    )


@dataclass(frozen=True)
class Output:
    """Where the report goes, in which format, and which verdicts fail the run."""

    format: str
    path: Path | None
    color: bool
    fail_on: frozenset[str]
    min_severity: str
    verbose: bool = False
    width: int = 80  # columns the table fits

    def render(self, report: Report) -> str:
        from patchcheck.report import render

        return render(report, self.format, color=self.color, verbose=self.verbose, width=self.width)

    def encoder(self) -> Callable[[BugResult], str] | None:
        """The format's per-result encoder, for the check's workers to run."""
        from patchcheck.report import result_encoder

        return result_encoder(self.format)


def use_color(choice: str, to_file: bool) -> bool:
    """--color always/never; auto: on a terminal only, and never when NO_COLOR is set."""
    if choice != "auto":
        return choice == "always"
    return not to_file and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def output(args: argparse.Namespace) -> Output:
    return Output(
        format=args.format or "table",
        path=args.output,
        color=use_color(args.color, args.output is not None),
        fail_on=frozenset(args.fail_on),
        min_severity=args.min_severity,
        verbose=args.verbose,
        # $COLUMNS, else the terminal's width; 80 at least
        width=max(80, shutil.get_terminal_size((80, 24)).columns),
    )


@dataclass(frozen=True)
class TreeRequest:
    """The trees to check, as given (trees.toml names or paths), and how to read them."""

    specs: tuple[str, ...]
    rev: str | None = None
    upstream_repo: Path | None = None
    prereqs: SearchLimits | None = None  # the search for a conflict's prerequisites (with upstream_repo)
    with_prereqs: bool = False


# ---- the Namespace helpers the other verbs use -------------------------------------------


def bugset(args: argparse.Namespace) -> BugSet:
    return known_bugs(sources(args))


def cache_dir(args: argparse.Namespace) -> Path:
    return config.cache_dir(args.cache_dir)


def tree_cache(args: argparse.Namespace) -> Path:
    return config.tree_cache(args.tree_cache)


def fetch_options(args: argparse.Namespace) -> list[str]:
    """The options given that a ``patchcheck fetch`` of the same bugs into the same cache repeats."""
    out: list[str] = []
    if getattr(args, "no_shipped_bugs", False):
        out.append("--no-shipped-bugs")
    for d in args.bugs_dir or []:
        out += ["--bugs-dir", str(d)]
    for opt, value in (("--cache-dir", args.cache_dir), ("--lore-url", args.lore_url)):
        if value:
            out += [opt, str(value)]
    return out


def print_series_hints(args: argparse.Namespace, failed: list[tuple[str, SeriesError]]) -> None:
    """After the report, on stderr: what to do about series that could not be obtained."""
    show_series_hints(sources(args), failed)


def show_series_hints(src: Sources, failed: Sequence[tuple[str, SeriesError]]) -> None:
    from patchcheck.fetch.hints import series_hints

    for line in series_hints(list(failed), list(src.fetch_args), src.lore_url):
        print(f"hint: {line}", file=sys.stderr)


def select_bugs(args: argparse.Namespace, bugs: BugSet) -> list[Bug]:
    return _select(bugs, selection(args))


def make_fetcher(args: argparse.Namespace) -> Fetcher:
    return fetcher(sources(args))


# ---- running a check --------------------------------------------------------------------


def known_bugs(src: Sources, meanwhile: Callable[[], None] | None = None) -> BugSet:
    """The bug files (a release audit's in ``src.jobs`` workers, while this process runs
    ``meanwhile``)."""
    return load_bugs(src.bugs_dirs, src.jobs, meanwhile)


def load_check_modules() -> None:
    """Import what a check runs on (pipeline, tree kinds, fetcher, report formats): run
    while workers parse the bug files, it adds nothing to the run's time."""
    import patchcheck.fetch.fetcher  # noqa: F401
    import patchcheck.pipeline  # noqa: F401
    import patchcheck.report  # noqa: F401
    import patchcheck.trees  # noqa: F401


def fetcher(src: Sources) -> Fetcher:
    from patchcheck.fetch.fetcher import Fetcher
    from patchcheck.fetch.upstream import open_clone

    return Fetcher(
        src.cache_dir,
        src.lore_url,
        offline=src.offline,
        timeout=src.timeout,
        limits=src.limits,
        upstream=open_clone(src.upstream_repo) if src.upstream_repo is not None else None,
    )


def check_report(
    bugs: Sequence[Bug],
    request: TreeRequest,
    src: Sources,
    shard: Shard | None = None,
    encode: Callable[[BugResult], str] | None = None,
) -> tuple[Report, list[tuple[str, SeriesError]]]:
    """Every bug on every requested tree (or the cells of ``shard``), through the pipeline;
    with the (bug id, error) of every series that could not be obtained, for the hints.
    ``encode``: the report format's per-result encoder, for the workers to run."""
    from patchcheck.pipeline import check_all, fetch_all, run_matrix, tree_context
    from patchcheck.report.model import Report
    from patchcheck.trees import find_trees_file

    tfile = find_trees_file(src.trees_file)
    # trees first: a bad --tree is exit 2 before any network work
    trees = [open_one_tree(src, s, request.rev, tfile) for s in dict.fromkeys(request.specs)]
    contexts = [
        tree_context(t, src.tree_cache, request.upstream_repo, request.prereqs, request.with_prereqs)
        for t in trees
    ]
    source = fetcher(src)
    if shard is None:
        checked = check_all(
            bugs,
            trees,
            source,
            source.series_key,
            src.jobs,
            contexts=contexts,
            max_hunks=src.max_hunks,
            encode=encode,
        )
        results, errors, encoded = checked.results, checked.failed, checked.encoded
    else:
        # the shard's cells only: each tree with its own bugs, and only their series fetched
        per_tree = [[b for b in bugs if shard.takes(b.id, t.info.name)] for t in trees]
        wanted = {b.id for bs in per_tree for b in bs}
        fetched = fetch_all([b for b in bugs if b.id in wanted], source, source.series_key, jobs=src.jobs)
        results = []
        for t, ctx, tbugs in zip(trees, contexts, per_tree, strict=True):
            if tbugs:
                results += run_matrix(tbugs, [t], fetched, jobs=src.jobs, contexts=[ctx], max_hunks=src.max_hunks)
        errors = {f: s for f, s in fetched.by_fix.items() if isinstance(s, SeriesError)}
        encoded = None
    failed = [(b.id, s) for b in bugs for f in b.fixes if (s := errors.get(f)) is not None]
    report = Report(
        results=results,
        trees=[t.info for t in trees],
        bugs=list(bugs),
        version=__version__,
        generated=now(),
        shard=str(shard) if shard else None,
        encoded=encoded,
    )
    return report, failed


def open_one_tree(src: Sources, spec: str, rev: str | None, trees_file: Path | None) -> TreeView:
    """``spec`` (a trees.toml name or a path) opened as the run's options say."""
    from patchcheck.trees import open_tree

    return open_tree(
        spec,
        cache_dir=src.tree_cache,
        trees_file=trees_file,
        rev=rev,
        max_member_bytes=src.max_member_bytes,
        arch=src.arch,
    )


def now() -> str:
    """The report's timestamp: UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def exit_code(results: Sequence[BugResult], fail_on: frozenset[str], min_severity: str) -> int:
    """interface.md: 3 when a series could not be obtained, 2 when the tree could not be
    read, else 1 on findings; when several apply the larger wins."""
    code = EXIT_OK
    for r in results:
        if r.verdict == Verdict.ERROR:
            codes = [p.error_code or EXIT_NO_SERIES for p in r.required if p.verdict == Verdict.ERROR]
            code = max(code, *codes) if codes else max(code, EXIT_NO_SERIES)
        elif r.verdict in fail_on and at_least(r.bug, min_severity):
            code = max(code, EXIT_FINDINGS)
    return code


def summarise_errors(results: Sequence[BugResult]) -> None:
    """One line per error cell on standard error, whatever the format and wherever the report
    went: a run that could not decide something never passes in silence."""
    from patchcheck.report._common import clean, result_error

    for r in results:
        if r.verdict == Verdict.ERROR:
            print(
                f"patchcheck: error: {clean(r.bug.id)} on {clean(r.tree.name)}: {result_error(r)}", file=sys.stderr
            )


def emit(text: str, path: Path | None) -> None:
    """The report to ``path``, or to standard output."""
    if path is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    from patchcheck.sys.atomic import replace_file  # here: most reports go to standard output

    replace_file(path, text.encode("utf-8"))  # atomic: a failed write keeps the old file


def prereq_limits(args: argparse.Namespace) -> SearchLimits:
    """--prereq-depth / --prereq-commits; --with-prereqs needs --upstream-repo."""

    if args.with_prereqs and args.upstream_repo is None:
        raise BadInput("--with-prereqs needs --upstream-repo PATH (a local clone to take the prerequisites from)")
    return SearchLimits(depth=args.prereq_depth, commits=args.prereq_commits)
